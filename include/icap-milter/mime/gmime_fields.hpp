// NAME
//   gmime_fields.hpp - what the walker reads off GMime objects, normalised
// SUMMARY
//   Content types, parameters, file names, transfer encodings (with the
//   lenient reading a forgiving mail client makes of a non-standard
//   token), raw header fields for the header checks, parser warnings in
//   words, and a GMime stream over a spool. Internal to src/mime.
#pragma once

#include "icap-milter/mime/gobject_ptr.hpp"
#include "icap-milter/mime/header_lint.hpp"
#include "icap-milter/mime/spool.hpp"

#include <gmime/gmime.h>

#include <string>
#include <vector>

namespace icapm {

// str - a possibly null C string as a string.
inline std::string str(const char* s) { return s ? std::string(s) : std::string(); }

// mime_type - "type/subtype" in lower case (application/octet-stream if unset).
std::string mime_type(GMimeObject* o);

// content_type_param - a Content-Type parameter, lower case ("" if absent).
std::string content_type_param(GMimeObject* o, const char* name);

// filename - Content-Disposition filename, else Content-Type name.
std::string filename(GMimeObject* o);

// effective_encoding - GMime's reading of Content-Transfer-Encoding, else
// what a lenient client makes of the token ("x-base64", "base-64",
// "\"base64\"", "base64;" all mean base64).
GMimeContentEncoding effective_encoding(GMimeObject* o);

// transfer_encoding - the encoding's name for items and logs, lower case.
std::string transfer_encoding(GMimeObject* o);

// disposition - "attachment", "inline", another token or "".
std::string disposition(GMimeObject* o);

// header_fields - the object's own header fields, raw (at most 256
// fields, each value cut at 8 KiB; enough to judge any real header).
std::vector<HeaderField> header_fields(GMimeObject* o);

// warning_name - a GMime parser warning in words.
const char* warning_name(GMimeParserWarning w);

// printable - a short, log-safe copy of hostile text.
std::string printable(const char* s, std::size_t max = 64);

// open_stream - a GMime stream over the spool's content (a dup of its fd,
// or its memory, read in place: the stream must not outlive the spool,
// and the spool must not be appended to meanwhile).
GObjectPtr<GMimeStream> open_stream(const Spool& spool);

} // namespace icapm
