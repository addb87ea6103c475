// NAME
//   gmime_fields.cpp - what the walker reads off GMime objects, normalised
// DIAGNOSTICS
//   open_stream() throws std::system_error when the spool's fd cannot be
//   duplicated and std::runtime_error when GMime makes no stream.
#include "icap-milter/mime/gmime_fields.hpp"

#include "icap-milter/common/ascii.hpp"
#include "icap-milter/common/unique_fd.hpp"

#include <fcntl.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace icapm {

// mime_type - "type/subtype" in lower case.
std::string mime_type(GMimeObject* o) {
    GMimeContentType* ct = g_mime_object_get_content_type(o);
    const char* type = ct ? g_mime_content_type_get_media_type(ct) : nullptr;
    const char* sub = ct ? g_mime_content_type_get_media_subtype(ct) : nullptr;
    return lower(type ? type : "application") + "/" + lower(sub ? sub : "octet-stream");
}

// content_type_param - a Content-Type parameter, lower case ("" if absent).
std::string content_type_param(GMimeObject* o, const char* name) {
    return lower(trim(str(g_mime_object_get_content_type_parameter(o, name))));
}

// filename - Content-Disposition filename, else Content-Type name.
std::string filename(GMimeObject* o) {
    const char* f = g_mime_object_get_content_disposition_parameter(o, "filename");
    if (!f || !*f) f = g_mime_object_get_content_type_parameter(o, "name");
    return str(f);
}

namespace {

// lenient_encoding - what a forgiving mail client makes of a
// Content-Transfer-Encoding that GMime did not recognise: comments and
// quotes dropped, the token cut at a blank or ';', an "x-" prefix and
// '-'/'_' ignored ("x-base64", "base-64", "quoted_printable").
GMimeContentEncoding lenient_encoding(GMimeObject* o) {
    const char* raw = g_mime_object_get_header(o, "Content-Transfer-Encoding");
    if (!raw) return GMIME_CONTENT_ENCODING_DEFAULT;
    std::string clean;
    int comment = 0;
    for (const char* p = raw; *p && p - raw < 256; ++p) {
        if (*p == '(')
            ++comment;
        else if (*p == ')')
            comment -= comment > 0;
        else if (comment == 0 && *p != '"')
            clean += *p;
    }
    std::string_view v = trim(clean);
    std::string token = lower(v.substr(0, v.find_first_of(" \t;,")));
    if (token.empty()) return GMIME_CONTENT_ENCODING_DEFAULT;
    GMimeContentEncoding e = g_mime_content_encoding_from_string(token.c_str());
    if (e != GMIME_CONTENT_ENCODING_DEFAULT) return e;
    if (token.rfind("x-", 0) == 0) token.erase(0, 2);
    std::string bare;
    for (char c : token)
        if (c != '-' && c != '_') bare += c;
    if (bare == "base64") return GMIME_CONTENT_ENCODING_BASE64;
    if (bare == "quotedprintable") return GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE;
    if (bare == "uuencode" || bare == "uue") return GMIME_CONTENT_ENCODING_UUENCODE;
    return GMIME_CONTENT_ENCODING_DEFAULT;
}

} // namespace

// effective_encoding - GMime's reading of the encoding, else the lenient one.
GMimeContentEncoding effective_encoding(GMimeObject* o) {
    GMimeContentEncoding e = GMIME_IS_PART(o) ? g_mime_part_get_content_encoding(GMIME_PART(o))
                                              : GMIME_CONTENT_ENCODING_DEFAULT;
    return e != GMIME_CONTENT_ENCODING_DEFAULT ? e : lenient_encoding(o);
}

// transfer_encoding - the part's Content-Transfer-Encoding, normalised.
std::string transfer_encoding(GMimeObject* o) {
    GMimeContentEncoding e = effective_encoding(o);
    if (e != GMIME_CONTENT_ENCODING_DEFAULT) {
        if (const char* s = g_mime_content_encoding_to_string(e)) return lower(s);
    }
    // Unknown tokens are kept (bounded) for the log; absent means 7bit
    // (RFC 2045 section 6.1).
    const char* raw = g_mime_object_get_header(o, "Content-Transfer-Encoding");
    if (!raw) return "7bit";
    return lower(trim(std::string_view(raw).substr(0, 64)));
}

// disposition - "attachment", "inline", another token or "".
std::string disposition(GMimeObject* o) { return lower(trim(str(g_mime_object_get_disposition(o)))); }

// header_fields - name and raw value of each of the object's fields.
std::vector<HeaderField> header_fields(GMimeObject* o) {
    constexpr int kMaxFields = 256;
    constexpr std::size_t kMaxValue = 8192;
    std::vector<HeaderField> out;
    GMimeHeaderList* list = g_mime_object_get_header_list(o);
    int n = list ? g_mime_header_list_get_count(list) : 0;
    for (int i = 0; i < n && i < kMaxFields; ++i) {
        GMimeHeader* h = g_mime_header_list_get_header_at(list, i);
        if (!h) continue;
        std::string value = str(g_mime_header_get_raw_value(h));
        if (value.size() > kMaxValue) value.resize(kMaxValue);
        out.emplace_back(str(g_mime_header_get_name(h)), std::move(value));
    }
    return out;
}

// warning_name - a GMime parser warning in words.
const char* warning_name(GMimeParserWarning w) {
    switch (w) {
    case GMIME_WARN_DUPLICATED_HEADER: return "duplicated header";
    case GMIME_WARN_DUPLICATED_PARAMETER: return "duplicated parameter";
    case GMIME_WARN_UNENCODED_8BIT_HEADER: return "unencoded 8-bit header";
    case GMIME_WARN_INVALID_CONTENT_TYPE: return "invalid Content-Type";
    case GMIME_WARN_INVALID_RFC2047_HEADER_VALUE: return "invalid RFC 2047 header value";
    case GMIME_WARN_MALFORMED_MULTIPART: return "multipart without parts";
    case GMIME_WARN_TRUNCATED_MESSAGE: return "truncated message";
    case GMIME_WARN_MALFORMED_MESSAGE: return "malformed message";
    case GMIME_CRIT_INVALID_HEADER_NAME: return "invalid header line";
    case GMIME_CRIT_CONFLICTING_HEADER: return "conflicting header";
    case GMIME_CRIT_CONFLICTING_PARAMETER: return "conflicting parameter";
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY: return "multipart without boundary";
    case GMIME_WARN_INVALID_PARAMETER: return "invalid parameter";
    case GMIME_WARN_INVALID_ADDRESS_LIST: return "invalid address list";
    case GMIME_CRIT_NESTING_OVERFLOW: return "nesting overflow";
    case GMIME_WARN_PART_WITHOUT_CONTENT: return "part without content";
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT: return "part without headers or content";
    }
    return "unknown parser warning";
}

// printable - printable ASCII, '?' for the rest, at most max chars.
std::string printable(const char* s, std::size_t max) {
    std::string out;
    for (; s && *s && out.size() < max; ++s) {
        auto c = static_cast<unsigned char>(*s);
        out += (c >= 32 && c < 127) ? static_cast<char>(c) : '?';
    }
    return out;
}

// open_stream - a GMime stream over the spool's content. A spool in
// memory is read in place, not copied (the copy was 8% of a walk's CPU):
// the stream gets a GByteArray that borrows the spool's bytes, does not
// own it (set_owner FALSE), and frees only the array's header, never the
// bytes, when the stream goes. GMime only reads a parser's stream.
GObjectPtr<GMimeStream> open_stream(const Spool& spool) {
    if (!spool.on_disk()) {
        std::string_view m = spool.memory();
        if (m.empty()) return adopt(g_mime_stream_mem_new());
        auto* bytes = reinterpret_cast<guint8*>(const_cast<char*>(m.data()));
        GByteArray* borrowed = g_byte_array_new_take(bytes, m.size());
        GMimeStream* s = g_mime_stream_mem_new_with_byte_array(borrowed);
        if (!s) {
            g_byte_array_free(borrowed, FALSE);
            throw std::runtime_error("mime: cannot create memory stream");
        }
        g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(s), FALSE);
        g_object_set_data_full(G_OBJECT(s), "icapm-borrowed", borrowed,
                               [](gpointer a) { g_byte_array_free(static_cast<GByteArray*>(a), FALSE); });
        return adopt(s);
    }
    UniqueFd fd(::fcntl(spool.fd(), F_DUPFD_CLOEXEC, 0));
    if (!fd) throw std::system_error(errno, std::generic_category(), "mime: dup spool fd");
    // Explicit bounds: the shared offset may have been moved by anyone.
    GMimeStream* s = g_mime_stream_fs_new_with_bounds(fd.get(), 0, static_cast<gint64>(spool.size()));
    if (!s) throw std::runtime_error("mime: cannot create file stream");
    fd.release(); // the stream owns (and closes) the dup now
    return adopt(s);
}

} // namespace icapm
