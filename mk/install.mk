# Installation, Debian package and the systemd sandbox (issue 5). Included by the top-level Makefile.
#
#   make install [PREFIX=/usr/local] [DESTDIR=] [SYSCONFDIR=/etc] [UNITDIR=$(PREFIX)/lib/systemd/system]
#   make uninstall [PREFIX=...] [DESTDIR=...]     removes what install put there (keeps /etc and state)
#   make deb                                       out/fashiond_<version>_<arch>.deb (dpkg-deb)
#   make systemd-test                              the test under a real systemd (root, systemd-nspawn)
#   make systemd-shell                             a shell in a throwaway systemd sandbox
#
# install and deb build release binaries that load the Swift runtime from a private directory beside
# them, PREFIX/lib/fashiond (RUNPATH $ORIGIN/../lib/fashiond, not the toolchain's directory), and
# install-tree.sh copies the runtime libraries they need there: one copy for both binaries, so the
# result runs on a Debian without a Swift toolchain. These builds differ from `make release` in their
# flags, so they have a scratch directory of their own (SCRATCH, default .build/dist).

DESTDIR     ?=
SYSCONFDIR  ?= /etc
UNITDIR     ?=
SCRATCH     ?= .build/dist
DIST_DIR    ?= $(CURDIR)/out
DIST_BIN     = $(SCRATCH)/release
# A module that imports Foundation (swift-crypto, SwiftProtobuf, TOMLKit do, and everything importing them
# inherits it) autolinks libFoundation.so even when, as here, only FoundationEssentials symbols are used;
# linked dynamically that would pull in Foundation and its 34 MB of ICU data. The binaries must not need
# them: not autolinking them makes any real use a link error.
NO_FOUNDATION = $(foreach lib,Foundation FoundationInternationalization,\
	-Xswiftc -Xfrontend -Xswiftc -disable-autolink-library -Xswiftc -Xfrontend -Xswiftc $(lib))
DIST_FLAGS   = -c release --scratch-path $(SCRATCH) --disable-local-rpath -Xswiftc -no-toolchain-stdlib-rpath \
	-Xlinker -rpath -Xlinker '$$ORIGIN/../lib/fashiond' $(NO_FOUNDATION)

.PHONY: dist-build install uninstall deb systemd-test systemd-shell

dist-build:
	$(SWIFT) build $(DIST_FLAGS) --product fashionctl
	$(SWIFT) build $(DIST_FLAGS) --product fashiond

install: dist-build
	SWIFT=$(SWIFT) packaging/install-tree.sh --bin-dir $(DIST_BIN) --prefix "$(PREFIX)" --destdir "$(DESTDIR)" \
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
	rm -rf "$(DESTDIR)$(PREFIX)/lib/fashiond" "$(DESTDIR)$(PREFIX)/share/fashiond" "$(DESTDIR)$(PREFIX)/share/doc/fashiond"
	@echo "kept $(SYSCONFDIR)/fashiond (configuration) and /var/lib/fashiond (results journal)"

deb: dist-build
	SWIFT=$(SWIFT) packaging/build-deb.sh --bin-dir $(DIST_BIN) --out-dir "$(DIST_DIR)" --strip

# The test drives the debug binaries of `swift build`; see Tests/SystemdTests.
systemd-test:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter SystemdTests

systemd-shell:
	scripts/systemd-sandbox.sh shell
