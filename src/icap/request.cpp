// NAME
//   request.cpp - build ICAP OPTIONS and RESPMOD requests
// SUMMARY
//   RESPMOD wraps the scanned item as the body of a synthetic HTTP
//   exchange: "GET http://icap-milter/<file>" and "HTTP/1.1 200 OK" with
//   the real Content-Length, because servers log the URL and some check
//   sizes against Content-Length. Encapsulated offsets are byte counts
//   from the start of the ICAP body (RFC 3507 section 4.4.1).
// DIAGNOSTICS
//   None; inputs that reach header lines are escaped or filtered.
#include "icap-milter/icap/request.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace icapm {

namespace {

// host_port - "host:port" with IPv6 literals in brackets.
std::string host_port(const IcapUri& uri) {
    std::string host = header_safe(uri.host, 255);
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return fmt::format("{}:{}", host, uri.port);
}

// is_unreserved - RFC 3986 unreserved characters stay literal in a URL.
bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

} // namespace

// header_safe - replace bytes that could break out of a header line.
std::string header_safe(std::string_view value, std::size_t max_len) {
    std::string out;
    out.reserve(std::min(value.size(), max_len));
    for (unsigned char c : value) {
        if (out.size() >= max_len) break;
        out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
    }
    return out;
}

// icap_request_uri - the URI on the request line. The scheme is always
// "icap": icaps only changes the transport, and servers route on the path.
std::string icap_request_uri(const IcapUri& uri) {
    std::string service;
    for (unsigned char c : uri.service) {
        // The service path came from the config; keep '/', '?', '=' and
        // '&' (c-icap aliases use them) but escape anything else odd.
        if (is_unreserved(c) || c == '/' || c == '?' || c == '=' || c == '&' || c == '%')
            service.push_back(static_cast<char>(c));
        else
            service += fmt::format("%{:02X}", c);
    }
    return fmt::format("icap://{}/{}", host_port(uri), service);
}

// build_options_request - OPTIONS carries no body: "null-body=0".
std::string build_options_request(const IcapUri& uri, std::string_view user_agent) {
    return fmt::format("OPTIONS {} ICAP/1.0\r\n"
                       "Host: {}\r\n"
                       "User-Agent: {}\r\n"
                       "Encapsulated: null-body=0\r\n"
                       "\r\n",
                       icap_request_uri(uri), host_port(uri), header_safe(user_agent));
}

// url_encode_filename - escape a mail-supplied filename for the GET line.
std::string url_encode_filename(std::string_view filename) {
    if (filename.size() > kMaxUrlFilename) filename = filename.substr(0, kMaxUrlFilename);
    if (filename.empty()) return "unnamed";
    std::string out;
    out.reserve(filename.size() * 3);
    for (unsigned char c : filename) {
        if (is_unreserved(c))
            out.push_back(static_cast<char>(c));
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

// chunk_header - hex size line of one chunk.
std::string chunk_header(std::size_t n) { return fmt::format("{:x}\r\n", n); }

// build_respmod_head - the three header sections with exact offsets.
RespmodFrame build_respmod_head(const IcapUri& uri, const RespmodHead& head) {
    const std::string req_hdr = fmt::format("GET http://{}/{} HTTP/1.1\r\n"
                                            "Host: {}\r\n"
                                            "\r\n",
                                            kSyntheticHttpHost,
                                            url_encode_filename(head.filename),
                                            kSyntheticHttpHost);
    const std::string res_hdr = fmt::format("HTTP/1.1 200 OK\r\n"
                                            "Content-Type: application/octet-stream\r\n"
                                            "Content-Length: {}\r\n"
                                            "\r\n",
                                            head.content_length);
    RespmodFrame f;
    f.res_hdr = req_hdr.size();
    f.res_body = req_hdr.size() + res_hdr.size();
    std::string icap = fmt::format("RESPMOD {} ICAP/1.0\r\n"
                                   "Host: {}\r\n"
                                   "User-Agent: {}\r\n"
                                   "Allow: 204\r\n",
                                   icap_request_uri(uri), host_port(uri),
                                   header_safe(head.user_agent));
    if (head.preview) icap += fmt::format("Preview: {}\r\n", *head.preview);
    icap += fmt::format("Encapsulated: req-hdr=0, res-hdr={}, res-body={}\r\n\r\n", f.res_hdr,
                        f.res_body);
    f.icap_head = icap.size();
    f.bytes = std::move(icap);
    f.bytes += req_hdr;
    f.bytes += res_hdr;
    return f;
}

} // namespace icapm
