// NAME
//   callbacks.hpp - register icap-milter's callbacks with libmilter
// SUMMARY
//   milter_register() hands libmilter the callbacks; negotiate() is the
//   pure decision behind xxfi_negotiate, kept apart so it can be tested
//   without an MTA.
#pragma once

#include <string>

namespace icapm {

// milter_register - smfi_register with every callback and flag we use;
// false (and a logged reason) when libmilter refuses.
bool milter_register();

// active_connections - SMTP sessions currently open (for draining at stop).
unsigned long active_connections() noexcept;

// Negotiation - what to ask the MTA for on one connection, and what it
// cannot give. A connection whose MTA lacks something is not dropped
// (that would let some MTAs pass mail unscanned): every message on it
// gets OnFail instead.
struct Negotiation {
    unsigned long actions = 0;    // actions requested (xxfi_negotiate's *pf0)
    unsigned long steps = 0;      // protocol flags requested (*pf1)
    bool leading_space = false;   // header values arrive with their leading space
    bool noreply_header = false;  // header callbacks answer SMFIS_NOREPLY
    bool noreply_body = false;    // body callbacks answer SMFIS_NOREPLY
    std::string missing;          // "" = usable; else what the MTA lacks, e.g. "SMFIF_CHGHDRS"
};

// negotiate - the request for an MTA offering mta_actions (SMFIF_*) and
// mta_steps (SMFIP_*); never asks for more than is offered.
Negotiation negotiate(unsigned long mta_actions, unsigned long mta_steps);

} // namespace icapm
