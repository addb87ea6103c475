// NAME
//   mime_fixtures.hpp - what the MIME unit tests share: fixtures and spools
#pragma once

#include "icap-milter/mime/spool.hpp"

#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

namespace icapm::test {

// load - a fixture from tests/data/mime, byte for byte.
inline std::string load(const std::string& name) {
    std::ifstream in(std::string(TEST_DATA_DIR) + "/mime/" + name, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// crlf - LF line ends as CRLF, the way the milter spools mail.
inline std::string crlf(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

// spool_of - raw bytes in a spool, appended in milter-sized chunks (on
// disk when mem is 0).
inline std::unique_ptr<Spool> spool_of(std::string_view raw, std::size_t mem = 1u << 20,
                                       const std::string& dir = "/tmp") {
    auto s = std::make_unique<Spool>(dir, mem);
    for (std::size_t off = 0; off < raw.size(); off += 65536) s->append(raw.substr(off, 65536));
    return s;
}

} // namespace icapm::test
