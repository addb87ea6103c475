// NAME
//   content_class.cpp - sniff archives and documents from a part's first bytes
// SUMMARY
//   Magic numbers at fixed offsets, the archive list following c-icap's
//   ARCHIVE group (plus 7z, xz, zstd and arj, which c-icap calls DATA but
//   engines unpack), documents the PDF and PostScript entries of its
//   DOCUMENT group. Microsoft Office files are not classed Document: the
//   self-test has no Office canary, so they rest on the plain EICAR proof.
// DIAGNOSTICS
//   None; sniffing never fails (short input is simply Other).
#include "icap-milter/scan/content_class.hpp"

#include "icap-milter/common/byte_source.hpp"

#include <array>
#include <span>
#include <string>

namespace icapm {

namespace {

// Magic - bytes expected at an offset.
struct Magic {
    std::size_t offset;
    std::string_view bytes;
};

using namespace std::string_view_literals;

// kArchives - archive and compressed-file signatures.
constexpr std::array kArchives{
    Magic{0, "PK\x03\x04"sv},         Magic{0, "PK\x05\x06"sv},        Magic{0, "PK\x07\x08"sv},
    Magic{0, "PK00PK\x03\x04"sv},     Magic{0, "Rar!\x1a\x07"sv},      Magic{0, "7z\xbc\xaf\x27\x1c"sv},
    Magic{0, "\x1f\x8b"sv},           Magic{0, "BZh"sv},               Magic{0, "\xfd" "7zXZ\x00"sv},
    Magic{0, "\x28\xb5\x2f\xfd"sv},   Magic{0, "\x1f\x9d"sv},          Magic{0, "SZDD"sv},
    Magic{0, "MSCF"sv},               Magic{257, "ustar"sv},           Magic{0, "\xed\xab\xee\xdb"sv},
    Magic{0, "\x78\x9f\x3e\x22"sv},   Magic{20, "\xdc\xa7\xc4\xfd"sv}, Magic{2, "-lh"sv},
    Magic{0, "ITSF"sv},               Magic{0, "!<arch>\n"sv},         Magic{0, "\x60\xea"sv},
};

// at - whether head holds m.
bool at(std::string_view head, const Magic& m) noexcept {
    return head.size() >= m.offset + m.bytes.size() && head.substr(m.offset, m.bytes.size()) == m.bytes;
}

} // namespace

// sniff_class - archives by magic, then documents.
ContentClass sniff_class(std::string_view head) noexcept {
    head = head.substr(0, std::min(head.size(), kSniffBytes));
    for (const Magic& m : kArchives)
        if (at(head, m)) return ContentClass::Archive;
    if (head.find("%PDF-") != std::string_view::npos) return ContentClass::Document;
    if (head.starts_with("%!") || head.starts_with("\x04%!")) return ContentClass::Document;
    return ContentClass::Other;
}

// sniff_class - read the head of a source, sniff it, rewind.
ContentClass sniff_class(ByteSource& source) {
    source.rewind();
    std::string head(kSniffBytes, '\0');
    std::size_t got = 0;
    while (got < head.size()) {
        std::size_t n = source.read(std::span<char>(head.data() + got, head.size() - got));
        if (n == 0) break;
        got += n;
    }
    head.resize(got);
    source.rewind();
    return sniff_class(std::string_view(head));
}

// to_string - lower-case class names for logs.
const char* to_string(ContentClass c) noexcept {
    switch (c) {
    case ContentClass::Other: return "other";
    case ContentClass::Archive: return "archive";
    case ContentClass::Document: return "document";
    }
    return "other";
}

// class_text - the class as a reason names it.
const char* class_text(ContentClass c) noexcept {
    switch (c) {
    case ContentClass::Other: return "files";
    case ContentClass::Archive: return "archives";
    case ContentClass::Document: return "documents (PDF, PostScript)";
    }
    return "files";
}

} // namespace icapm
