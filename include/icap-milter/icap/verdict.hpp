// NAME
//   verdict.hpp - what a scanner said about one item
#pragma once

#include <string>
#include <vector>

namespace icapm {

// VerdictKind - ordered by severity (policy takes the worst of a message).
enum class VerdictKind { Clean, Unscannable, Infected, Error };

// to_string - "clean", "unscannable", "infected", "error".
const char* to_string(VerdictKind k) noexcept;

// Verdict - the outcome of scanning one item.
struct Verdict {
    VerdictKind kind = VerdictKind::Error;
    std::vector<std::string> threats; // virus names when Infected
    std::string reason;               // why Unscannable / Error, for logs and replies
    int icap_status = 0;              // last ICAP status code seen (0 if none)
    std::string istag;                // the server's ISTag (definition signature)
    std::string server;               // which server answered (URI)
};

} // namespace icapm
