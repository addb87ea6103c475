// NAME
//   verdict.cpp - names of verdict kinds (logs, headers, statistics)
#include "icap-milter/icap/verdict.hpp"

namespace icapm {

// to_string - lower-case name of a verdict kind.
const char* to_string(VerdictKind k) noexcept {
    switch (k) {
    case VerdictKind::Clean: return "clean";
    case VerdictKind::Unscannable: return "unscannable";
    case VerdictKind::Infected: return "infected";
    case VerdictKind::Error: return "error";
    }
    return "error";
}

} // namespace icapm
