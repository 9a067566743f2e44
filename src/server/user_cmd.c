#include "server/cmd.h"
int
user_main(int argc, char **argv)
{
	return 2;
}
