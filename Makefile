# Lambda bootstraps for `sam build --build-in-source` (template.yaml: BuildMethod: makefile).
#
# SAM runs `make build-<LogicalId>` once per function, one after another, with ARTIFACTS_DIR
# set to .aws-sam/build/<LogicalId>. Every target runs the same single cargo invocation for all
# of the template's binaries (arm64, release profile of Cargo.toml), so the dependencies are
# compiled once and the binaries are linked in parallel; the first target does the work, the
# others find cargo's output up to date in about a second. Cargo, not a stamp file, decides
# what is stale, so a single-function build or an edit between builds never ships an old
# bootstrap. Each target then copies its function's bootstrap.
#
# The binary of a function is its Metadata.BuildProperties.Binary in template.yaml (the same
# field infra/local_stack.py reads) in ./template.yaml, whichever template sam build was given;
# infra/tests/test_build.py checks this file finds them all.
#
#   make bootstraps              build every bootstrap into target/lambda/<binary>/bootstrap
#   make print-binaries          LogicalId=binary for every function in the template

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
TEMPLATE := $(ROOT)/template.yaml
# Where cargo lambda puts <binary>/bootstrap (the compiled code goes to CARGO_TARGET_DIR as usual).
LAMBDA_DIR := $(ROOT)/target/lambda
CARGO ?= cargo
# Extra flags for cargo lambda build, e.g. CARGO_LAMBDA_FLAGS='--locked --timings'.
CARGO_LAMBDA_FLAGS ?=

# `LogicalId=binary` for every resource with a Metadata.BuildProperties.Binary: the
# two-space-indented keys of the template are resources (and parameters/outputs, which have
# no Binary), the first indented `Binary:` line inside one is its binary.
FUNCTION_BINARIES := $(shell awk '\
  /^  [A-Za-z0-9]+:[ \t]*$$/ { lid = $$1; sub(/:$$/, "", lid); next } \
  /^[^ \t#]/ { lid = "" } \
  lid != "" && $$1 == "Binary:" { b = $$2; gsub(/["\047]/, "", b); print lid "=" b; lid = "" } \
  ' '$(TEMPLATE)')
BINARIES := $(sort $(foreach fb,$(FUNCTION_BINARIES),$(lastword $(subst =, ,$(fb)))))
binary_of = $(lastword $(subst =, ,$(filter $(1)=%,$(FUNCTION_BINARIES))))

.PHONY: bootstraps print-binaries
.DEFAULT_GOAL := bootstraps

bootstraps:
	$(if $(BINARIES),,$(error no Metadata.BuildProperties.Binary found in $(TEMPLATE)))
	cd '$(ROOT)' && $(CARGO) lambda build --release --arm64 --lambda-dir '$(LAMBDA_DIR)' \
	  $(addprefix --bin ,$(BINARIES)) $(CARGO_LAMBDA_FLAGS)

print-binaries:
	@$(foreach fb,$(FUNCTION_BINARIES),echo '$(fb)';)

# Checked before anything is built: `make build-X` is run by sam build, for a function of the template.
$(foreach goal,$(filter build-%,$(MAKECMDGOALS)),\
  $(if $(ARTIFACTS_DIR),,$(error ARTIFACTS_DIR is not set: $(goal) is run by `sam build`))\
  $(if $(call binary_of,$(goal:build-%=%)),,\
    $(error $(goal:build-%=%) has no Metadata.BuildProperties.Binary in $(TEMPLATE))))

build-%: bootstraps
	@$(if $(filter $(realpath $(ROOT)),$(realpath $(CURDIR))),:,echo 'note: sam build copied the whole checkout to $(CURDIR) for $*;' \
	  'sam build --build-in-source skips that copy (the build itself always runs in $(ROOT))')
	mkdir -p '$(ARTIFACTS_DIR)'
	cp '$(LAMBDA_DIR)/$(call binary_of,$*)/bootstrap' '$(ARTIFACTS_DIR)/bootstrap'
