// NAME
//   counters.cpp - the statistics counters and their text form
#include "icap-milter/stats/counters.hpp"

namespace icapm {

// token_rejected_because - bump the total and the per-reason count.
void Counters::token_rejected_because(const std::string& reason) {
    ++token_rejected;
    std::lock_guard lock(mutex_);
    if (rejected_reasons_.size() < 64 || rejected_reasons_.count(reason)) ++rejected_reasons_[reason];
}

// render - stable order, so tools and tests can parse it.
std::string Counters::render() const {
    std::string out;
    auto line = [&](const char* name, std::uint64_t v) { out += std::string(name) + ": " + std::to_string(v) + "\n"; };
    line("Examined", examined);
    line("SentToScanner", sent_to_scanner);
    line("Scanned", scanned);
    line("Infected", infected);
    line("VirusFree", virus_free);
    line("Unscanned", unscanned);
    line("Token.Self", token_self);
    line("Token.TrustedServer", token_trusted);
    line("Token.Rejected", token_rejected);
    std::lock_guard lock(mutex_);
    for (const auto& [reason, n] : rejected_reasons_) out += "Token.Rejected." + reason + ": " + std::to_string(n) + "\n";
    return out;
}

// counters - one instance for the process.
Counters& counters() {
    static Counters c;
    return c;
}

} // namespace icapm
