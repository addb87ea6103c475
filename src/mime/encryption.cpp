// NAME
//   encryption.cpp - tell real ciphertext from parts that only claim it
// SUMMARY
//   A multipart/encrypted or application/pkcs7-mime label costs an
//   attacker nothing, and mail clients that do not know it show the parts
//   as ordinary attachments. So a part is unscannable as encrypted only
//   when its bytes are ciphertext: an OpenPGP message of session key
//   packets and one encrypted data packet (binary, or in one ASCII armour
//   block), or a CMS envelopedData / authEnvelopedData ContentInfo.
// DESCRIPTION
//   OpenPgpCheck is a streaming state machine (constant memory, every
//   byte looked at once) so the walker can run it while decoding a part
//   of any size. Armour lines are kept up to kMaxLine bytes; base64 is
//   decoded on the fly into the packet checker. Packet lengths are only
//   counted down, never used to index anything. inspect_cms hands the
//   bytes to OpenSSL's d2i (which limits its own nesting) and looks at
//   the content type; the caller bounds the size (MaxScanSize).
// DIAGNOSTICS
//   None: every malformed input is simply "not encrypted". OpenSSL errors
//   of a failed parse are cleared from the thread's error queue.
#include "icap-milter/mime/encryption.hpp"
#include "icap-milter/common/ascii.hpp"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include <algorithm>
#include <climits>
#include <memory>

namespace icapm {

namespace {

constexpr std::size_t kMaxLine = 4096;      // armour lines are 64 or 76 characters
constexpr std::size_t kMaxControl = 1024;   // a control part is one short line
constexpr std::string_view kBegin = "-----BEGIN PGP MESSAGE-----";
constexpr std::string_view kEnd = "-----END PGP MESSAGE-----";

// base64_value - the 6-bit value of a base64 character, -1 for others.
int base64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// is_session_key_tag - PKESK (1) and SKESK (3) packets.
bool is_session_key_tag(unsigned tag) { return tag == 1 || tag == 3; }

// is_data_tag - SED (9), SEIPD (18) and AEAD encrypted data (20).
bool is_data_tag(unsigned tag) { return tag == 9 || tag == 18 || tag == 20; }

// has_version - packets whose body starts with a version octet.
bool has_version(unsigned tag) { return tag == 1 || tag == 3 || tag == 18 || tag == 20; }

// version_ok - versions of those packets that RFC 4880/9580 (or the
// AEAD draft GnuPG emits) define.
bool version_ok(unsigned tag, unsigned char v) {
    switch (tag) {
    case 1: return v == 3 || v == 6;
    case 3: return v == 4 || v == 5 || v == 6;
    case 18: return v == 1 || v == 2;
    case 20: return v == 1;
    }
    return false;
}

// CmsFree - release a parsed CMS ContentInfo.
struct CmsFree {
    void operator()(CMS_ContentInfo* p) const noexcept { CMS_ContentInfo_free(p); }
};
using CmsPtr = std::unique_ptr<CMS_ContentInfo, CmsFree>;

} // namespace

// is_pkcs7_mime_type - application/pkcs7-mime or its x- form (lower case).
bool is_pkcs7_mime_type(std::string_view type) {
    return type == "application/pkcs7-mime" || type == "application/x-pkcs7-mime";
}

// is_pgp_control_body - a short body with a "Version: 1" line.
bool is_pgp_control_body(std::string_view body) {
    if (body.size() > kMaxControl) return false;
    while (!body.empty()) {
        std::size_t nl = body.find('\n');
        std::string_view line = trim(body.substr(0, nl));
        if (line == "Version: 1") return true;
        if (nl == std::string_view::npos) break;
        body.remove_prefix(nl + 1);
    }
    return false;
}

// feed - dispatch on the first byte: packets start with bit 7 set,
// armour with text.
bool OpenPgpCheck::feed(std::string_view bytes) {
    if (bytes.empty()) return mode_ != Mode::kBad;
    if (mode_ == Mode::kStart)
        mode_ = (static_cast<unsigned char>(bytes.front()) & 0x80) ? Mode::kBinary : Mode::kArmour;
    if (mode_ == Mode::kBinary) {
        if (!packet_bytes(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()))
            mode_ = Mode::kBad;
    } else if (mode_ == Mode::kArmour) {
        for (char c : bytes) {
            if (!armour_byte(c)) {
                mode_ = Mode::kBad;
                break;
            }
        }
    }
    return mode_ != Mode::kBad;
}

// finish - the last armour line, then: did the data packet end at the end?
bool OpenPgpCheck::finish() {
    if (mode_ == Mode::kArmour && !line_.empty() && !armour_line()) mode_ = Mode::kBad;
    if (mode_ == Mode::kArmour && where_ != Line::kAfter) mode_ = Mode::kBad;
    if (mode_ != Mode::kBinary && mode_ != Mode::kArmour) return false;
    return packet_ == Packet::kDone || (packet_ == Packet::kToEnd && !version_due_);
}

// armour_byte - gather one armour line (bounded) and judge it at its end.
bool OpenPgpCheck::armour_byte(char c) {
    if (c == '\n') {
        bool ok = armour_line();
        line_.clear();
        return ok;
    }
    if (line_.size() >= kMaxLine) return false;
    line_ += c;
    return true;
}

// armour_line - one armour line: whitespace, BEGIN, headers, base64,
// checksum, END, whitespace, in that order and nothing else.
bool OpenPgpCheck::armour_line() {
    std::string_view line = trim(line_);
    switch (where_) {
    case Line::kBefore:
        if (line.empty()) return true;
        if (line != kBegin) return false;
        where_ = Line::kHeaders;
        return true;
    case Line::kHeaders: {
        if (line.empty()) {
            where_ = Line::kBody;
            return true;
        }
        std::size_t colon = line.find(": ");
        if (colon != std::string_view::npos && colon > 0 &&
            line.substr(0, colon).find_first_of(" \t") == std::string_view::npos)
            return true; // "Version: ...", "Comment: ..."
        where_ = Line::kBody; // lenient: no blank line after the headers
        [[fallthrough]];
    }
    case Line::kBody:
        if (line == kEnd) {
            // A quartet cut short (or padding not finished) is not base64.
            if (b64_count_ != 0) return false;
            where_ = Line::kAfter;
            return true;
        }
        if (line.size() == 5 && line[0] == '=') {
            for (char c : line.substr(1))
                if (base64_value(c) < 0) return false;
            where_ = Line::kChecksum;
            return true;
        }
        for (char c : line)
            if (!base64_char(c)) return false;
        return true;
    case Line::kChecksum:
        if (line.empty()) return true;
        if (line != kEnd || b64_count_ != 0) return false;
        where_ = Line::kAfter;
        return true;
    case Line::kAfter:
        return line.empty();
    }
    return false;
}

// base64_char - decode one character of the armour body into packets;
// once padding has completed a quartet, nothing may follow.
bool OpenPgpCheck::base64_char(char c) {
    if (b64_ended_) return false;
    if (c == '=') {
        if (b64_count_ < 2) return false;
        ++b64_pad_;
        if (b64_count_ + b64_pad_ < 4) return true;
        unsigned char out[2];
        std::size_t n = 0;
        if (b64_count_ == 2) {
            out[n++] = static_cast<unsigned char>(b64_bits_ >> 4);
        } else {
            out[n++] = static_cast<unsigned char>(b64_bits_ >> 10);
            out[n++] = static_cast<unsigned char>(b64_bits_ >> 2);
        }
        b64_count_ = 0;
        b64_ended_ = true;
        return packet_bytes(out, n);
    }
    int v = base64_value(c);
    if (v < 0 || b64_pad_ > 0) return false;
    b64_bits_ = (b64_bits_ << 6) | static_cast<std::uint32_t>(v);
    if (++b64_count_ < 4) return true;
    unsigned char out[3] = {static_cast<unsigned char>(b64_bits_ >> 16),
                            static_cast<unsigned char>(b64_bits_ >> 8),
                            static_cast<unsigned char>(b64_bits_)};
    b64_count_ = 0;
    b64_bits_ = 0;
    return packet_bytes(out, 3);
}

// packet_bytes - run decoded OpenPGP bytes through the packet machine;
// bodies are skipped by counting, never indexed.
bool OpenPgpCheck::packet_bytes(const unsigned char* p, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        switch (packet_) {
        case Packet::kHeader:
            if (!packet_header(p[i++])) return false;
            break;
        case Packet::kOldLength:
        case Packet::kNewLength:
            if (!packet_length(p[i++])) return false;
            break;
        case Packet::kBody: {
            if (version_due_ && !body_byte(p[i])) return false;
            std::uint64_t take = std::min<std::uint64_t>(left_, n - i);
            i += static_cast<std::size_t>(take);
            left_ -= take;
            if (left_ == 0 && !body_end()) return false;
            break;
        }
        case Packet::kToEnd:
            if (version_due_ && !body_byte(p[i])) return false;
            i = n;
            break;
        case Packet::kDone:
            return false; // bytes after the encrypted data packet
        }
    }
    return true;
}

// packet_header - the tag octet: old or new format, and the order rule
// (session keys and markers, then one encrypted data packet).
bool OpenPgpCheck::packet_header(unsigned char b) {
    if (!(b & 0x80)) return false;
    bool new_format = (b & 0x40) != 0;
    tag_ = new_format ? (b & 0x3Fu) : ((b >> 2) & 0x0Fu);
    if (!is_session_key_tag(tag_) && !is_data_tag(tag_) && tag_ != 10) return false;
    version_due_ = has_version(tag_);
    partial_ = false;
    length_ = 0;
    if (new_format) {
        packet_ = Packet::kNewLength;
        new_first_ = true;
        return true;
    }
    unsigned type = b & 3u;
    if (type == 3) { // indeterminate: to the end of the message
        if (!is_data_tag(tag_)) return false;
        packet_ = Packet::kToEnd;
        return true;
    }
    packet_ = Packet::kOldLength;
    length_octets_ = 1 << type;
    return true;
}

// packet_length - one length octet (old format: 1, 2 or 4 big-endian
// octets; new format: one, two, five octets or a partial body length).
bool OpenPgpCheck::packet_length(unsigned char b) {
    if (packet_ == Packet::kOldLength) {
        length_ = (length_ << 8) | b;
        if (--length_octets_ > 0) return true;
        left_ = length_;
        partial_ = false;
        packet_ = Packet::kBody;
        return left_ > 0 || body_end();
    }
    if (new_first_) {
        new_first_ = false;
        partial_ = false;
        if (b < 192) {
            left_ = b;
        } else if (b < 224) {
            length_ = static_cast<std::uint64_t>(b - 192) << 8;
            length_octets_ = -1; // one more octet, then + 192
            return true;
        } else if (b == 255) {
            length_ = 0;
            length_octets_ = 4;
            return true;
        } else {
            if (!is_data_tag(tag_)) return false; // partial lengths are for data
            left_ = std::uint64_t{1} << (b & 0x1F);
            partial_ = true;
        }
    } else if (length_octets_ == -1) {
        left_ = length_ + b + 192;
        length_octets_ = 0;
    } else {
        length_ = (length_ << 8) | b;
        if (--length_octets_ > 0) return true;
        left_ = length_;
    }
    packet_ = Packet::kBody;
    return left_ > 0 || body_end();
}

// body_end - a body (chunk) has ended: next length, next packet, or done.
// Called with left_ == 0; a packet that still owes its version is bad.
bool OpenPgpCheck::body_end() {
    if (version_due_) return false;
    if (partial_) {
        packet_ = Packet::kNewLength;
        new_first_ = true;
    } else {
        packet_ = is_data_tag(tag_) ? Packet::kDone : Packet::kHeader;
    }
    return true;
}

// body_byte - the version octet of the packet being read.
bool OpenPgpCheck::body_byte(unsigned char b) {
    version_due_ = false;
    return version_ok(tag_, b);
}

// inspect_cms - OpenSSL parses the whole ContentInfo; the type decides.
CmsInfo inspect_cms(std::string_view der) {
    CmsInfo info;
    if (der.empty() || der.size() > static_cast<std::size_t>(LONG_MAX)) return info;
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    const unsigned char* end = p + der.size();
    CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));
    if (!cms) {
        ERR_clear_error();
        return info;
    }
    // What follows the ContentInfo would reach no scanner as ciphertext.
    for (; p < end; ++p)
        if (*p != 0 && !is_blank_char(static_cast<char>(*p))) return info;
    switch (OBJ_obj2nid(CMS_get0_type(cms.get()))) {
    case NID_pkcs7_enveloped:
    case NID_id_smime_ct_authEnvelopedData:
        info.kind = CmsKind::kEnveloped;
        break;
    case NID_pkcs7_signed: {
        info.kind = CmsKind::kSigned;
        ASN1_OCTET_STRING** content = CMS_get0_content(cms.get());
        if (content && *content) {
            const unsigned char* data = ASN1_STRING_get0_data(*content);
            int len = ASN1_STRING_length(*content);
            if (data && len > 0) info.content.assign(reinterpret_cast<const char*>(data), static_cast<std::size_t>(len));
            info.has_content = true;
        }
        break;
    }
    case NID_id_smime_ct_compressedData:
        info.kind = CmsKind::kCompressed;
        break;
    default:
        info.kind = CmsKind::kOther;
        break;
    }
    ERR_clear_error();
    return info;
}

} // namespace icapm
