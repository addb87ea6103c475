// NAME
//   encryption.hpp - is a part that says "encrypted" really ciphertext?
// SUMMARY
//   A part is unscannable as encrypted only when its bytes are what it
//   claims: an OpenPGP message (ASCII armour or binary packets, checked
//   by OpenPgpCheck) in a PGP/MIME wrapper, or a CMS ContentInfo of type
//   envelopedData or authEnvelopedData (inspect_cms). Anything else that
//   merely carries such a label is scanned like any part. No GMime here:
//   the walker decides on the MIME structure and feeds decoded bytes in.
// DIAGNOSTICS
//   Nothing throws (bar std::bad_alloc); hostile input gives "not
//   encrypted", never a read outside the bytes handed in.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace icapm {

// is_pkcs7_mime_type - application/pkcs7-mime or its x- form (lower case).
bool is_pkcs7_mime_type(std::string_view type);

// is_pgp_control_body - the decoded body of a PGP/MIME control part
// (application/pgp-encrypted): a short text with a "Version: 1" line.
bool is_pgp_control_body(std::string_view body);

// OpenPgpCheck - fed the decoded bytes of a part in chunks, tells whether
// they are exactly one encrypted OpenPGP message (RFC 4880/9580): either
// binary packets, or one "-----BEGIN PGP MESSAGE-----" armour block with
// only whitespace around it whose base64 decodes to such packets. The
// packets must be session key packets (PKESK, SKESK; marker packets are
// skipped) followed by exactly one encrypted data packet (SED, SEIPD or
// AEAD) that ends where the bytes end. Memory is constant.
class OpenPgpCheck {
public:
    // feed - the next bytes; false as soon as they cannot be such a message.
    bool feed(std::string_view bytes);
    // finish - true if all bytes fed make one complete encrypted message.
    bool finish();

private:
    enum class Mode { kStart, kBinary, kArmour, kBad };
    enum class Line { kBefore, kHeaders, kBody, kChecksum, kAfter };
    enum class Packet { kHeader, kOldLength, kNewLength, kBody, kToEnd, kDone };

    bool armour_byte(char c);
    bool armour_line();
    bool base64_char(char c);
    bool packet_bytes(const unsigned char* p, std::size_t n);
    bool packet_header(unsigned char b);
    bool packet_length(unsigned char b);
    bool body_end();
    bool body_byte(unsigned char b);

    Mode mode_ = Mode::kStart;
    // Armour: the current line (bounded), where we are, the base64 state.
    std::string line_;
    Line where_ = Line::kBefore;
    std::uint32_t b64_bits_ = 0;
    int b64_count_ = 0;
    int b64_pad_ = 0;
    bool b64_ended_ = false;
    // Packets: the state, the current tag, bytes left in this (partial)
    // body, the length octets still to come.
    Packet packet_ = Packet::kHeader;
    unsigned tag_ = 0;
    std::uint64_t left_ = 0;
    std::uint64_t length_ = 0;
    int length_octets_ = 0;     // of an old-format length, or the rest of a new one
    bool new_first_ = true;     // next new-format length octet is the first
    bool partial_ = false;      // this chunk is a partial body length
    bool version_due_ = false;  // the next body byte is the packet version
};

// CmsKind - what a DER (or BER) blob is, as far as the scanner cares.
enum class CmsKind {
    kNotCms,     // not a CMS ContentInfo at all (or with junk after it)
    kEnveloped,  // envelopedData or authEnvelopedData: ciphertext
    kSigned,     // signedData: content (if any) inside, in clear
    kCompressed, // compressedData: content inside, zlib-compressed
    kOther,      // data, digestedData, ...: scanned as it is
};

// CmsInfo - the result of inspect_cms.
struct CmsInfo {
    CmsKind kind = CmsKind::kNotCms;
    bool has_content = false; // signedData with encapsulated content
    std::string content;      // that content (a MIME entity for S/MIME)
};

// inspect_cms - parse bytes as one CMS ContentInfo (OpenSSL, which bounds
// its own nesting); trailing bytes other than whitespace or NULs make it
// kNotCms. For signedData the encapsulated content is copied out.
CmsInfo inspect_cms(std::string_view der);

} // namespace icapm
