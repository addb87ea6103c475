// NAME
//   base64url.hpp - strict base64url (RFC 4648 section 5), no padding
// SUMMARY
//   The JWS compact form allows exactly one spelling of each byte string:
//   the URL-safe alphabet, no '=' padding, no blanks, and zero bits in
//   the unused low bits of the last character. Anything else is refused,
//   so a token cannot be re-spelled (malleated) and still decode.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace icapm {

// base64url_encode - the canonical unpadded base64url text of data.
std::string base64url_encode(std::string_view data);

// base64url_decode - the bytes of text, or nullopt when text is not the
// canonical unpadded base64url spelling of some byte string.
std::optional<std::string> base64url_decode(std::string_view text);

} // namespace icapm
