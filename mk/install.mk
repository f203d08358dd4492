# Installation, Debian package and the systemd sandbox (issue 5). Included by the top-level Makefile.
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc] [UNITDIR=$(PREFIX)/lib/systemd/system]
#   make uninstall [PREFIX=...] [DESTDIR=...]     removes what install put there (keeps /etc and state)
#   make deb                                       out/fashiond_<version>_<arch>.deb (dpkg-deb)
#   make systemd-test                              the test under a real systemd (root, systemd-nspawn)
#   make systemd-shell                             a shell in a throwaway systemd sandbox
#
# install and deb build release binaries with the Swift runtime linked statically, so the result
# runs on a Debian without a Swift toolchain. SCRATCH selects the build directory (default .build).

DESTDIR     ?=
SYSCONFDIR  ?= /etc
UNITDIR     ?=
SCRATCH     ?= .build
DIST_DIR    ?= $(CURDIR)/out
DIST_BIN     = $(SCRATCH)/release

.PHONY: dist-build install uninstall deb systemd-test systemd-shell

dist-build:
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(SCRATCH) --product fashiond
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path $(SCRATCH) --product fashionctl

install: dist-build
	packaging/install-tree.sh --bin-dir $(DIST_BIN) --prefix "$(PREFIX)" --destdir "$(DESTDIR)" \
		--sysconfdir "$(SYSCONFDIR)" $(if $(UNITDIR),--unitdir "$(UNITDIR)") --strip

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/bin/fashiond" "$(DESTDIR)$(PREFIX)/bin/fashionctl" \
		"$(DESTDIR)$(or $(UNITDIR),$(PREFIX)/lib/systemd/system)/fashiond.service" \
		"$(DESTDIR)$(or $(UNITDIR),$(PREFIX)/lib/systemd/system)/fashiond.socket" \
		"$(DESTDIR)$(PREFIX)/lib/sysusers.d/fashiond.conf" \
		"$(DESTDIR)$(PREFIX)/share/man/man8/fashiond.8.gz" "$(DESTDIR)$(PREFIX)/share/man/man1/fashionctl.1.gz" \
		"$(DESTDIR)$(PREFIX)/share/bash-completion/completions/fashionctl" \
		"$(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_fashionctl" \
		"$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/fashionctl.fish"
	rm -rf "$(DESTDIR)$(PREFIX)/share/fashiond" "$(DESTDIR)$(PREFIX)/share/doc/fashiond"
	@echo "kept $(SYSCONFDIR)/fashiond (configuration) and /var/lib/fashiond (results journal)"

deb: dist-build
	packaging/build-deb.sh --bin-dir $(DIST_BIN) --out-dir "$(DIST_DIR)" --strip

# The test drives the debug binaries of `swift build`; see Tests/SystemdTests.
systemd-test:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter SystemdTests

systemd-shell:
	scripts/systemd-sandbox.sh shell
