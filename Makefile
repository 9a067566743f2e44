# Top-level wrapper around CMake/CTest. See README.md.
#   make          build build/smtpgate (optimised, no sanitizers)
#   make deps     install every Debian package the build and the tests use
#   make run      build and start a local demo server
#   make check    build with ASan+UBSan (clang) and run every test
#   make bench    run the benchmarks of bench/ and print the figures
#   make install  build, then install under PREFIX (default /usr/local),
#                 staged under DESTDIR if given (cmake --install does the same)
#   make deb      build the Debian package build/deb/smtpgate_VERSION_ARCH.deb

BUILD      ?= build
CHECKBUILD ?= build-check
JOBS       ?= $(shell nproc)
PYTHON     ?= /usr/bin/python3
PREFIX     ?= /usr/local
DESTDIR    ?=

DEB_PACKAGES = build-essential cmake pkg-config clang libclang-rt-14-dev clang-format \
	libssl-dev libevent-dev libgsasl-dev libcrypt-dev libsodium-dev libjansson-dev \
	libcmocka-dev openssl ca-certificates python3-pytest swaks libnet-ssleay-perl \
	libauthen-sasl-perl curl msmtp procps gsasl python3-jwt python3-cryptography \
	libcurl4-openssl-dev dovecot-core libunbound-dev unbound nsd ldnsutils dnsutils \
	python3-aiosmtpd postfix dovecot-lmtpd hydra prometheus fail2ban haproxy \
	python3-dkim python3-nacl libseccomp-dev pandoc mandoc pebble certbot libsystemd-dev \
	debhelper lintian ssl-cert adduser logrotate strace gdb libpq-dev \
	postgresql redis-server \
	libhiredis-dev

.PHONY: all deps run check bench install deb format format-check layers clean

all:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMTPGATE_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		echo "postfix postfix/main_mailer_type select No configuration" | \
			$$SUDO debconf-set-selections; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# quiet: the build's output goes to a log shown only when the build fails, so
# that the demo's banner is the last thing on the terminal
run: deps
	@mkdir -p $(BUILD)
	@echo "building $(BUILD)/smtpgate (log: $(BUILD)/build.log) ..."
	@if ! { cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSMTPGATE_TESTS=OFF && \
		cmake --build $(BUILD) -j $(JOBS); } >$(BUILD)/build.log 2>&1; then \
		cat $(BUILD)/build.log; echo "make run: the build failed (log: $(BUILD)/build.log)" >&2; \
		exit 1; fi
	@sh contrib/demo.sh $(BUILD)/smtpgate

check: deps format-check layers all
	@CC=clang cmake -S . -B $(CHECKBUILD) -DCMAKE_BUILD_TYPE=Debug \
		-DSMTPGATE_SANITIZE=ON -DSMTPGATE_FUZZ=ON >/dev/null
	@cmake --build $(CHECKBUILD) -j $(JOBS)
	@cd $(CHECKBUILD) && ctest --output-on-failure -j $(JOBS) -V
	@# the package compiles the project once more: at the lowest priority,
	@# beside the integration tests (mostly waiting on sockets), which
	@# take it when test_deb.py comes (it waits for deb.rc)
	@rm -f $(CHECKBUILD)/debpkg/deb.rc && mkdir -p $(CHECKBUILD)/debpkg
	@( nice -n 19 $(MAKE) --no-print-directory deb BUILD=$(CHECKBUILD)/debpkg \
		>$(CHECKBUILD)/debpkg/deb.log 2>&1; echo $$? >$(CHECKBUILD)/debpkg/deb.rc.tmp; \
		mv $(CHECKBUILD)/debpkg/deb.rc.tmp $(CHECKBUILD)/debpkg/deb.rc ) &
	@SMTPGATE_BIN=$(CURDIR)/$(CHECKBUILD)/smtpgate \
		SMTPGATE_DEB_PREBUILT=$(CURDIR)/$(CHECKBUILD)/debpkg \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		$(PYTHON) -m pytest -v -rfEs tests/integ

# An existing build tree keeps its configuration (a check build can be
# installed as well); a missing one is made as `make` does.
install:
	@if [ ! -f $(BUILD)/CMakeCache.txt ]; then $(MAKE) --no-print-directory all; fi
	@cmake --build $(BUILD) -j $(JOBS)
	@DESTDIR="$(DESTDIR)" cmake --install $(BUILD) --prefix "$(PREFIX)"

# The package is built from a copy of the source (the files git knows,
# committed or not, and new ones it does not ignore), so that the build's
# by-products stay under build/deb and the tree stays clean.
DEB_DIR = $(BUILD)/deb
deb:
	@rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	@git ls-files -z --cached --others --exclude-standard | \
		xargs -0 sh -c 'for f; do [ -e "$$f" ] || [ -L "$$f" ] && printf "%s\0" "$$f"; done' sh | \
		tar --null -T - -cf - | tar -xf - -C $(DEB_DIR)/src
	@cd $(DEB_DIR)/src && DEB_BUILD_OPTIONS="parallel=$(JOBS) nocheck noddebs" \
		dpkg-buildpackage -b -us -uc >../build.log 2>&1 || \
		{ tail -40 ../build.log; echo "make deb: the build failed (log: $(DEB_DIR)/build.log)" >&2; exit 1; }
	@rm -rf $(DEB_DIR)/src
	@ls $(DEB_DIR)/*.deb

bench: deps all
	@$(MAKE) -C bench SMTPGATE=$(CURDIR)/$(BUILD)/smtpgate

FORMAT_FILES = $(shell git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'bench/*.c' 2>/dev/null)

format:
	@clang-format -i $(FORMAT_FILES)

format-check:
	@if [ -n "$(FORMAT_FILES)" ]; then clang-format --dry-run --Werror $(FORMAT_FILES); fi
	@echo "format: ok"

# the layer table of DESIGN.md 2, file and function lengths, include cycles
layers:
	@$(PYTHON) tools/layers --baseline tools/layers.baseline --quiet && echo "layers: ok (known breaks: tools/layers.baseline)"

clean:
	rm -rf $(BUILD) $(CHECKBUILD)
