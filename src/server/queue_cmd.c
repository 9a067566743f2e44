#include "server/cmd.h"
int
queue_cmd_main(int argc, char **argv)
{
	return 2;
}
