// NAME
//   views.cpp - the whole-message views of a walk, and the walk as text
// SUMMARY
//   Part "0" is the raw message as one item, for the scanner's own MIME
//   parser; part "0.text" is a plain mail holding the decoded base64 and
//   quoted-printable text parts (see add_text_view). walk_report() prints
//   a walk for icap-milterctl mime and the golden files.
#include "icap-milter/mime/views.hpp"

#include "icap-milter/common/sha256.hpp"

#include <memory>
#include <string>
#include <vector>

namespace icapm {

// whole_message_item - the raw message: shared, or copied. Views are
// not hashed: no token covers them (is_view_id), and the hash would cost
// as much as the copy.
ScanItem whole_message_item(const Spool& raw, const WalkLimits& limits, std::shared_ptr<const Spool> shared) {
    ScanItem it;
    it.part_id = "0";
    it.filename = "message.eml";
    it.content_type = "message/rfc822";
    it.transfer_encoding = "binary";
    it.size = raw.size();
    const bool keep = raw.size() <= limits.max_scan_size;
    if (keep && shared) {
        it.data = std::move(shared);
    } else if (keep) {
        // Charged to nobody: this copy replaces the parts that were not made.
        auto copy = std::make_shared<Spool>(limits.temp_dir, limits.memory_limit, limits.budget);
        auto src = raw.reader();
        std::vector<char> buf(64 * 1024);
        for (std::size_t n; (n = src->read(buf)) > 0;) copy->append(std::string_view(buf.data(), n));
        it.data = std::move(copy);
    } else {
        it.scannable = false;
        it.unscannable_reason = "size limit (" + std::to_string(raw.size()) + " > " + std::to_string(limits.max_scan_size) + " bytes)";
    }
    return it;
}


// add_text_view - the "0.text" item: a plain mail whose body is every
// base64 or quoted-printable text/* part, decoded. clamd matches some
// content only in a file it takes for mail (a small text/html part sent
// alone is typed HTML and normalised first); in the raw message such
// text is still encoded. Empty when there is no such part; skipped (a
// warning) when it would be over max_scan_size.
void add_text_view(WalkResult& result, const WalkLimits& limits) {
    // MIME-Version first: clamd types a file as mail by its first header
    // (a Content-Type or X- field first leaves it typed by the HTML inside).
    static constexpr std::string_view kHead = "MIME-Version: 1.0\r\n"
                                              "Content-Type: text/plain; charset=utf-8\r\n"
                                              "Content-Transfer-Encoding: 8bit\r\n"
                                              "X-Icap-Milter-View: decoded text parts\r\n\r\n";
    // The parts go into as many views as max_scan_size needs ("0.text",
    // "0.text2", ...), so no text part misses this reading.
    std::vector<std::vector<const ScanItem*>> groups;
    std::uint64_t room = 0;
    for (const auto& it : result.items) {
        if (!it.data || it.content_type.rfind("text/", 0) != 0) continue;
        if (it.transfer_encoding != "base64" && it.transfer_encoding != "quoted-printable") continue;
        const std::uint64_t need = it.size + 2;
        if (groups.empty() || need > room) {
            groups.emplace_back();
            room = limits.max_scan_size > kHead.size() ? limits.max_scan_size - kHead.size() : 0;
        }
        groups.back().push_back(&it);
        room = need > room ? 0 : room - need;
    }
    std::vector<ScanItem> views;
    std::vector<char> buf(64 * 1024);
    for (std::size_t g = 0; g < groups.size(); ++g) {
        auto view = std::make_shared<Spool>(limits.temp_dir, limits.memory_limit, limits.budget);
        auto put = [&](std::string_view bytes) { view->append(bytes); };
        put(kHead);
        for (const ScanItem* t : groups[g]) {
            auto r = t->data->reader();
            for (std::size_t n; (n = r->read(buf)) > 0;) put(std::string_view(buf.data(), n));
            put("\r\n");
        }
        ScanItem it;
        it.part_id = g == 0 ? "0.text" : "0.text" + std::to_string(g + 1);
        it.filename = "decoded-text.eml";
        it.content_type = "message/rfc822";
        it.transfer_encoding = "8bit";
        it.size = view->size();
        if (it.size > limits.max_scan_size) {
            // One text part nearly max_scan_size: the view adds its header.
            it.scannable = false;
            it.unscannable_reason = "size limit (" + std::to_string(it.size) + " > " +
                                    std::to_string(limits.max_scan_size) + " bytes)";
        } else {
            it.data = std::move(view);
        }
        views.push_back(std::move(it));
    }
    for (auto& v : views) result.items.push_back(std::move(v));
}


// walk_report - one line per verdict reason and per item.
std::string walk_report(const WalkResult& r) {
    std::string out = "structure: ";
    out += r.ambiguous() ? "ambiguous" : !r.suspects.empty() ? "suspect" : "hashable";
    out += "\n";
    if (r.limit_hit) out += "limit: " + r.limit_reason + "\n";
    for (const auto& a : r.ambiguities) out += "ambiguous: " + a + "\n";
    for (const auto& s : r.suspects) out += "suspect: " + s + "\n";
    for (const auto& it : r.items) {
        out += "item " + it.part_id + " type=" + it.content_type + " enc=" + it.transfer_encoding + " file=\"" +
               it.filename + "\" size=" + std::to_string(it.size) + " sha256=" +
               (is_view_id(it.part_id) ? std::string("-") : to_hex(it.sha256).substr(0, 16));
        out += it.scannable ? " scannable" : " unscannable(" + it.unscannable_reason + ")";
        out += "\n";
    }
    return out;
}

} // namespace icapm
