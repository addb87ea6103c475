// NAME
//   test_negotiate.cpp - the milter option negotiation decision
// SUMMARY
//   negotiate() must never ask for more than the MTA offers, and must
//   name every needed action the MTA withholds, so the connection gets
//   OnFail instead of being dropped (which some MTAs answer by passing
//   mail on unscanned).
#include "icap-milter/milter/callbacks.hpp"

#include <doctest/doctest.h>
#include <libmilter/mfapi.h>

using namespace icapm;

namespace {
// Postfix 3.x with milter_protocol = 6 offers every action and these steps.
constexpr unsigned long kAllActions = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT |
                                      SMFIF_DELRCPT | SMFIF_QUARANTINE | SMFIF_CHGFROM | SMFIF_ADDRCPT_PAR |
                                      SMFIF_SETSYMLIST;
constexpr unsigned long kAllSteps = 0x001fffffUL;
} // namespace

TEST_CASE("negotiate: a full offer is usable and asks only for what is offered") {
    const Negotiation n = negotiate(kAllActions, kAllSteps);
    CHECK(n.missing.empty());
    CHECK((n.actions & SMFIF_ADDHDRS));
    CHECK((n.actions & SMFIF_CHGHDRS));
    CHECK((n.actions & ~kAllActions) == 0);
    CHECK((n.steps & ~kAllSteps) == 0);
    CHECK(n.leading_space);
    CHECK(n.noreply_header);
    CHECK(n.noreply_body);
    // Steps the milter relies on are never skipped; DATA stays (TCP stall).
    for (unsigned long step : {SMFIP_NOCONNECT, SMFIP_NOMAIL, SMFIP_NORCPT, SMFIP_NOBODY, SMFIP_NOHDRS, SMFIP_NODATA})
        CHECK((n.steps & step) == 0);
}

TEST_CASE("negotiate: a withheld header action is named, never silently accepted") {
    struct Row {
        unsigned long offered;
        const char* missing;
    };
    const Row rows[] = {
        {kAllActions & ~SMFIF_CHGHDRS, "SMFIF_CHGHDRS"},
        {kAllActions & ~SMFIF_ADDHDRS, "SMFIF_ADDHDRS"},
        {kAllActions & ~(SMFIF_ADDHDRS | SMFIF_CHGHDRS), "SMFIF_ADDHDRS|SMFIF_CHGHDRS"},
        {0, "SMFIF_ADDHDRS|SMFIF_CHGHDRS"},
        // The protocol v1 default (libmilter substitutes it for 0) lacks CHGHDRS.
        {SMFIF_ADDHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT, "SMFIF_CHGHDRS"},
    };
    for (const Row& r : rows) {
        CAPTURE(r.offered);
        const Negotiation n = negotiate(r.offered, kAllSteps);
        CHECK(n.missing == r.missing);
        // libmilter aborts the connection when asked for more than offered.
        CHECK((n.actions & ~r.offered) == 0);
    }
    // Optional actions may be missing: still usable.
    CHECK(negotiate(SMFIF_ADDHDRS | SMFIF_CHGHDRS, kAllSteps).missing.empty());
}

TEST_CASE("negotiate: steps the MTA does not offer are not requested") {
    const Negotiation n = negotiate(kAllActions, 0);
    CHECK(n.missing.empty());
    CHECK(n.steps == 0);
    CHECK_FALSE(n.leading_space);
    CHECK_FALSE(n.noreply_header);
    CHECK_FALSE(n.noreply_body);
    const Negotiation some = negotiate(kAllActions, SMFIP_NOHELO | SMFIP_NR_HDR | SMFIP_NOHDRS | SMFIP_NOBODY);
    CHECK(some.steps == (SMFIP_NOHELO | SMFIP_NR_HDR));
    CHECK(some.noreply_header);
    CHECK_FALSE(some.noreply_body);
}
