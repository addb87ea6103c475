// NAME
//   schema.hpp - the one declaration of every configuration key
#pragma once

#include "icap-milter/config/config.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// OptionType - how a value is spelled.
enum class OptionType { String, Bool, Uint, Octal, Size, Duration, Enum, Uri, List };

// OptionSpec - one key: name, type, default, range, help, and accessors.
struct OptionSpec {
    std::string_view name;          // CamelCase key
    OptionType type;
    std::string default_value;      // as written in a config file ("" = unset), from Config{}
    std::string_view range;         // human text: "1-256", "reject|discard|accept", ...
    std::string_view help;          // one or two sentences, used by conf/man checks
    bool repeatable = false;
    // set - parse text into the config; returns an error text or "".
    std::function<std::string(Config&, std::string_view)> set;
    // get - the current value(s) as config-file text (one per line when repeatable).
    std::function<std::vector<std::string>(const Config&)> get;
    std::string_view section = {};  // heading in the sample config ("Daemon", "Scanners", ...)
    std::string_view sample = {};   // example the sample config shows commented out ("" = the default)
};

// schema - every key, in documentation order.
std::span<const OptionSpec> schema();

// find_option - the spec of a key (exact, case-sensitive); nullptr if unknown.
const OptionSpec* find_option(std::string_view name) noexcept;

// type_name - how a type is named in the docs: "string", "number", "size", ...
std::string_view type_name(OptionType type) noexcept;

// Value spellings shared by the parser, the docs and other components
// (icap-milterctl, ...). Each returns nullopt on anything malformed.
// parse_bool - yes/no, true/false, on/off, 1/0 (case-insensitive).
std::optional<bool> parse_bool(std::string_view text) noexcept;
// parse_size - bytes: "4096", "512K", "25M", "1G" (binary multiples).
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept;
// parse_duration - "500ms", "10s", "2m", "1h"; a bare number is seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept;
// format_size - the largest exact unit: 26214400 -> "25M".
std::string format_size(std::uint64_t bytes);
// format_duration - "300s", "1500ms": the form the parser reads back.
std::string format_duration(std::chrono::milliseconds d);
// quote_value - a value as config-file text: in double quotes, with a
// backslash before '"' and '\', when empty or holding blanks, '#', '"'
// or a backslash; otherwise as it is.
std::string quote_value(std::string_view value);

// sample_config - the text of conf/icap-milter.conf, generated from the
// schema (tests/unit/test_docs.cpp keeps the shipped file equal to it).
std::string sample_config();

// man_options - the OPTIONS section body of icap-milter.conf(5) in roff,
// generated from the schema (the man page must contain it verbatim).
std::string man_options();

} // namespace icapm
