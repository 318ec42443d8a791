# Build and install pseudo, contain, inject and contain-oci the way Linux system tools are.
#
#   make                      the release binaries (static, see below), their manual pages and
#                             bash, zsh and fish completions, under target/
#   make install              installs them under PREFIX (default /usr/local); as an ordinary
#                             user: make install PREFIX=$HOME/.local
#   make uninstall            removes exactly what make install installed
#   make check                the test command: builds, stages `make install` in a temporary
#                             DESTDIR, checks the staged tree, runs the test suite against the
#                             staged binaries, and checks that `make uninstall` empties it
#
# Variables: PREFIX, DESTDIR (staging root for packagers), BINDIR, MANDIR, the completion
# directories BASHCOMPDIR, ZSHCOMPDIR, FISHCOMPDIR, and CONTAINERSCONFDIR, where podman's
# drop-in for contain-oci goes (default /etc/containers/containers.conf.d; for a user's own
# podman: make install PREFIX=$HOME/.local
# CONTAINERSCONFDIR=$HOME/.config/containers/containers.conf.d); CARGO, TARGET (default: the
# host's musl target if installed, else the host's own; the binaries are copied to
# target/static).
#
# The build is static, against musl when Rust's musl target is installed (`rustup target add
# x86_64-unknown-linux-musl`; .ci/run deps does it), else against glibc. A static binary skips
# the dynamic loader, which profiling found to be a quarter to a third of the tools' start-up;
# musl's small static C library also keeps the resident supervisors under 1.5 MiB, where static
# glibc's 800 KiB of printf, iconv and dlopen machinery does not (bench/README.md). Neither can
# reach glibc's NSS or dlopen (`make check-static` checks it). The target is given explicitly
# because crt-static without --target would also apply to proc-macros (clap_derive), which
# cannot be linked statically.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(DATADIR)/zsh/site-functions
FISHCOMPDIR ?= $(DATADIR)/fish/vendor_completions.d
CONTAINERSCONFDIR ?= /etc/containers/containers.conf.d
DESTDIR ?=

CARGO ?= cargo
# Rust's target triple of this machine, and its musl twin if that target is installed.
HOST = $(shell rustc -vV | sed -n 's/^host: //p')
MUSL = $(subst -gnu,-musl,$(HOST))
HAVE_MUSL = $(wildcard $(shell rustc --print sysroot)/lib/rustlib/$(MUSL)/lib)
# Static, and not position-independent: a static-pie relocates itself at every start.
STATIC_RUSTFLAGS ?= -C target-feature=+crt-static -C relocation-model=static
STATIC_BUILD = RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --release --locked \
	$(TOOLS:%=-p %) --target

TOOLS = pseudo contain inject contain-oci
# What `make` built, whichever the target: install needs no Rust toolchain (`sudo make install`).
RELEASE = target/static
GENERATED = target/generated
STAGE = target/stage

BINARIES = $(TOOLS:%=$(RELEASE)/%)
MANPAGES = $(TOOLS:%=$(GENERATED)/man1/%.1)
BASH_COMPLETIONS = $(TOOLS:%=$(GENERATED)/bash/%)
ZSH_COMPLETIONS = $(TOOLS:%=$(GENERATED)/zsh/_%)
FISH_COMPLETIONS = $(TOOLS:%=$(GENERATED)/fish/%.fish)
PODMAN_CONF = $(GENERATED)/contain-oci.conf
GENERATED_FILES = $(MANPAGES) $(BASH_COMPLETIONS) $(ZSH_COMPLETIONS) $(FISH_COMPLETIONS) \
	$(PODMAN_CONF)

.PHONY: all build generated install uninstall check check-static clean

# The pages and completions are made from the binaries once cargo has brought them up to date.
all: build
	@$(MAKE) --no-print-directory generated

generated: $(GENERATED_FILES)

# Cargo decides what is out of date; a binary is copied to $(RELEASE) only when it changed, so
# that the pages and completions are made again only then. Should the musl build fail (code
# that only builds against glibc), the glibc one is made instead, saying so.
build:
	@set -e; target=$(or $(TARGET),$(if $(HAVE_MUSL),$(MUSL),$(HOST))); \
	case $$target in *-musl) ;; *) echo "make: no Rust target $(MUSL)" \
		"(rustup target add $(MUSL)): building static against glibc," \
		"which starts slower and keeps more resident" >&2 ;; esac; \
	echo '$(STATIC_BUILD)' $$target; \
	if ! $(STATIC_BUILD) $$target; then \
		[ -z "$(TARGET)" ] && [ $$target != $(HOST) ] || exit 1; \
		echo "make: the $$target build failed (above): building static against glibc" \
			"($(HOST)) instead" >&2; \
		target=$(HOST); $(STATIC_BUILD) $$target; \
	fi; \
	mkdir -p $(RELEASE); \
	for tool in $(TOOLS); do \
		cmp -s $${CARGO_TARGET_DIR:-target}/$$target/release/$$tool $(RELEASE)/$$tool || \
			cp $${CARGO_TARGET_DIR:-target}/$$target/release/$$tool $(RELEASE)/$$tool; \
	done; \
	echo "make: $(RELEASE) holds the static $$target build"

# `make install` alone builds what is missing, but does not run cargo again when the binaries
# exist (so that `make && sudo make install` does not need root's cargo).
$(BINARIES):
	$(MAKE) build

$(GENERATED)/man1/%.1: $(RELEASE)/%
	@mkdir -p $(@D)
	$< --man >$@.tmp && mv $@.tmp $@

$(GENERATED)/bash/%: $(RELEASE)/%
	@mkdir -p $(@D)
	$< --completions bash >$@.tmp && mv $@.tmp $@

$(GENERATED)/zsh/_%: $(RELEASE)/%
	@mkdir -p $(@D)
	$< --completions zsh >$@.tmp && mv $@.tmp $@

$(GENERATED)/fish/%.fish: $(RELEASE)/%
	@mkdir -p $(@D)
	$< --completions fish >$@.tmp && mv $@.tmp $@

# podman's drop-in names the installed binary: made again when BINDIR changes.
$(PODMAN_CONF): contain-oci/contain-oci.conf.in FORCE
	@mkdir -p $(@D)
	@sed 's|@BINDIR@|$(BINDIR)|' $< >$@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@

.PHONY: FORCE
FORCE:

install: $(BINARIES) $(GENERATED_FILES)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) \
		$(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR) $(DESTDIR)$(CONTAINERSCONFDIR)
	install -m 0755 $(BINARIES) $(DESTDIR)$(BINDIR)/
	install -m 0644 $(MANPAGES) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(BASH_COMPLETIONS) $(DESTDIR)$(BASHCOMPDIR)/
	install -m 0644 $(ZSH_COMPLETIONS) $(DESTDIR)$(ZSHCOMPDIR)/
	install -m 0644 $(FISH_COMPLETIONS) $(DESTDIR)$(FISHCOMPDIR)/
	install -m 0644 $(PODMAN_CONF) $(DESTDIR)$(CONTAINERSCONFDIR)/contain-oci.conf

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(BINDIR)/%) $(TOOLS:%=$(DESTDIR)$(MANDIR)/man1/%.1) \
		$(TOOLS:%=$(DESTDIR)$(BASHCOMPDIR)/%) $(TOOLS:%=$(DESTDIR)$(ZSHCOMPDIR)/_%) \
		$(TOOLS:%=$(DESTDIR)$(FISHCOMPDIR)/%.fish) \
		$(DESTDIR)$(CONTAINERSCONFDIR)/contain-oci.conf

# No glibc NSS (getpwnam and friends) and no dlopen in the static binaries: a static glibc can
# only reach NSS modules through dlopen, and they need the matching shared glibc.
check-static: $(BINARIES)
	tests/install-check.sh static $(BINARIES)

check: all check-static
	rm -rf $(STAGE)
	$(MAKE) install DESTDIR=$(CURDIR)/$(STAGE)
	tests/install-check.sh installed $(CURDIR)/$(STAGE) $(BINDIR) $(MANDIR) $(BASHCOMPDIR) \
		$(ZSHCOMPDIR) $(FISHCOMPDIR) $(CONTAINERSCONFDIR)
	CONTAIN_TESTS_BIN_DIR=$(CURDIR)/$(STAGE)$(BINDIR) $(CARGO) test --workspace --locked
	$(MAKE) uninstall DESTDIR=$(CURDIR)/$(STAGE)
	tests/install-check.sh uninstalled $(CURDIR)/$(STAGE)
	rm -rf $(STAGE)

clean:
	$(CARGO) clean
