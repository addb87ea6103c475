// NAME
//   content_class.hpp - what kind of file a part is, for scanner trust
// SUMMARY
//   The self-test learns per server whether it scans archives (the zip
//   canary) and documents (the PDF canary); a part is sniffed from its
//   first bytes, as the scanners themselves sniff it (c-icap's magic
//   table), so parts of a class a server skips never go to it.
// DIAGNOSTICS
//   Pure; unknown bytes are ContentClass::Other.
#pragma once

#include <cstdint>
#include <string_view>

namespace icapm {

class ByteSource;

// ContentClass - the kind of file a part is, as far as scanner trust
// goes: the self-test learns per server whether it scans archives and
// documents (PDF), and parts of a class a server skips never go to it.
enum class ContentClass { Other, Archive, Document };

// PartInfo - what the pool must know of a part to lend a server trusted with it.
struct PartInfo {
    std::uint64_t size = 0;
    ContentClass kind = ContentClass::Other;
};

// kSniffBytes - how many leading bytes sniff_class() looks at.
inline constexpr std::size_t kSniffBytes = 1024;

// sniff_class - Archive for zip, rar, 7z, gzip, bzip2, xz, zstd, cab,
// tar, arj, lha, zoo, rpm, deb, TNEF and CHM magic; Document for PDF (a
// "%PDF-" anywhere in the first 1024 bytes, as PDF readers accept it) and
// PostScript; Other for the rest.
ContentClass sniff_class(std::string_view head) noexcept;
// sniff_class - the same over the first kSniffBytes of a source (rewound
// before and after). Throws what the source's read() throws.
ContentClass sniff_class(ByteSource& source);
// to_string - "other", "archive", "document".
const char* to_string(ContentClass c) noexcept;
// class_text - how a reason names the class: "archives", "documents (PDF, PostScript)".
const char* class_text(ContentClass c) noexcept;

} // namespace icapm
