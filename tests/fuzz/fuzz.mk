# NAME
#   fuzz.mk - out-of-tree build of the libFuzzer harnesses
# SYNOPSIS
#   make -f tests/fuzz/fuzz.mk TOP=<source dir> OUT=<build dir> OUT/fuzz_NAME
# DESCRIPTION
#   Called by tests/fuzz/run.sh; rarely useful on its own. Builds
#   tests/fuzz/fuzz_NAME.cpp with clang (libFuzzer, ASan, UBSan) against
#   an archive of every source file in the component directories the
#   harness names below, so a file added to a component is picked up and
#   only the objects the harness needs are linked. Objects, dependency
#   files and binaries go under OUT; the source tree is not written.
# DIAGNOSTICS
#   A harness that starts needing another component fails to link with
#   an undefined symbol: add that directory to its _DIRS line.

TOP ?= .
OUT ?= build-fuzz
FUZZ_CXX ?= clang++

# Harness NAME: the component directories and pkg-config modules it needs.
HARNESSES := icap_response mime
icap_response_DIRS := src/icap src/common
icap_response_PKGS := openssl fmt
mime_DIRS := src/mime src/common
mime_PKGS := gmime-3.0 openssl

SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
ALL_PKGS := $(sort $(foreach h,$(HARNESSES),$($(h)_PKGS)))
FUZZ_CXXFLAGS := -std=c++20 -g -O1 $(SAN) -fsanitize=fuzzer-no-link \
	-I$(TOP)/include $(shell pkg-config --cflags $(ALL_PKGS))

all: $(foreach h,$(HARNESSES),$(OUT)/fuzz_$(h))
.PHONY: all

# harness - the archive and the binary of one harness ($(1) is its NAME)
define harness
$(1)_OBJS := $$(patsubst $$(TOP)/%.cpp,$$(OUT)/obj/%.o,\
	$$(sort $$(foreach d,$$($(1)_DIRS),$$(wildcard $$(TOP)/$$(d)/*.cpp))))
$$(OUT)/lib_$(1).a: $$($(1)_OBJS)
	@rm -f $$@
	ar cr $$@ $$^
$$(OUT)/fuzz_$(1): $$(OUT)/obj/tests/fuzz/fuzz_$(1).o $$(OUT)/lib_$(1).a
	$$(FUZZ_CXX) $$(SAN) -fsanitize=fuzzer $$^ $$(shell pkg-config --libs $$($(1)_PKGS)) -o $$@
endef
$(foreach h,$(HARNESSES),$(eval $(call harness,$(h))))

# Every object also depends on this file, so a flag change rebuilds it.
$(OUT)/obj/%.o: $(TOP)/%.cpp $(TOP)/tests/fuzz/fuzz.mk
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(OUT)/obj -name '*.d' 2>/dev/null)
