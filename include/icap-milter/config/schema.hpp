// NAME
//   schema.hpp - the one declaration of every configuration key
#pragma once

#include "icap-milter/config/config.hpp"

#include <functional>
#include <span>
#include <string>
#include <string_view>

namespace icapm {

// OptionType - how a value is spelled.
enum class OptionType { String, Bool, Uint, Octal, Size, Duration, Enum, Uri };

// OptionSpec - one key: name, type, default, range, help, and accessors.
struct OptionSpec {
    std::string_view name;          // CamelCase key
    OptionType type;
    std::string_view default_value; // as written in a config file ("" = unset)
    std::string_view range;         // human text: "1-256", "reject|discard|accept", ...
    std::string_view help;          // one or two sentences, used by conf/man checks
    bool repeatable = false;
    // set - parse text into the config; returns an error text or "".
    std::function<std::string(Config&, std::string_view)> set;
    // get - the current value(s) as config-file text (one per line when repeatable).
    std::function<std::vector<std::string>(const Config&)> get;
};

// schema - every key, in documentation order.
std::span<const OptionSpec> schema();

} // namespace icapm
