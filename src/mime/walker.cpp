// NAME
//   walker.cpp - parse a spooled message with GMime and list its leaves
// SUMMARY
//   The spool is handed to GMime as a persistent stream (a dup of the
//   spool's fd, or a memory copy of a small in-memory spool), so part
//   content stays where it is. The tree is walked depth first in MIME
//   order; every leaf is decoded in 64 KiB chunks through GMime's basic
//   filter into its own Spool while its size and SHA-256 are computed.
//   Part ids follow IMAP (RFC 3501): the body of a single-part message at
//   P is "P.1", the children of a multipart at P are "P.1", "P.2", ...,
//   with P empty at the top.
//   A message/rfc822 part that GMime left as a leaf because it carries a
//   base64 or quoted-printable transfer encoding is decoded and parsed
//   again, so what it contains is walked too. A multipart in which GMime
//   found no part at all (no or wrong boundary) becomes an item holding
//   its prologue and epilogue, which is where its body ended up.
//   The preamble and epilogue of every multipart that hold more than
//   whitespace are items of their own, named after the prefix its
//   children are numbered below: "preamble" and "epilogue" at the top,
//   "P.preamble", "P.epilogue" for a multipart whose children are P.n.
//   Text items (text/* leaves, leaves whose first bytes hold no NUL,
//   preambles and epilogues) are searched for uuencode, yEnc and BinHex
//   blocks (inline_encodings.cpp); each decoded block becomes an item
//   right after its text ("P.u1", "P.y2", "P.b3"), at most
//   kMaxInlineBlocks per text, each counting towards max_parts. Past
//   that bound the message is suspect: the scanner's own reading of the
//   whole message has to cover the blocks not decoded here.
//   Encryption is believed only when the bytes show it (encryption.cpp):
//   in a genuine PGP/MIME multipart/encrypted only the OpenPGP message
//   part is unscannable, and an application/pkcs7-mime part only when it
//   is CMS envelopedData; any other child of such a wrapper, or a
//   wrapper that fails the checks, is walked and scanned like any part.
//   Opaque signedData is scanned as it is, and its content is walked.
//   Hostile input: GMime itself stops nesting at a few hundred levels,
//   but builds an object of about 2 KB per MIME delimiter line and one
//   of about 450 bytes per header line, so 10 MB of bare "--b" or "X: y"
//   lines would cost gigabytes. A cheap line census bounds both before
//   GMime is called; then depth and part count are checked while
//   walking. Whenever a limit is hit the walk stops and the whole raw
//   message becomes one more item (part "0"), so the scanner still sees
//   every byte.
//   Readings: where other readers (mail clients, the scanner's own MIME
//   parser) could see other parts or other bytes, the walk records why.
//   "Ambiguous" means the other readings cannot be produced here (two
//   boundaries, conflicting headers, base64 junk, a bare CR in a
//   delimiter line, message/partial, GMime's critical warnings, ...):
//   the message fails closed whatever the scan says, unless a virus is
//   found. "Suspect" means GMime's reading plus the scanner's reading of
//   the whole raw message (part "0") cover them (a missing close
//   delimiter, a non-standard transfer encoding token, ...). Header
//   checks are in header_lint.cpp, line checks in census.cpp, base64
//   checks in base64_reader.cpp; what ends up with which status is
//   listed in icap-milter.conf(5), MIME READINGS. The whole-message
//   views (parts "0" and "0.text") are made in views.cpp.
//   Known cost: GMime keeps multipart prologues and epilogues in memory
//   (and the top-level ones are copied into WalkResult), so a message
//   that is mostly prologue or epilogue costs about twice its size.
// DIAGNOSTICS
//   std::runtime_error when GMime cannot parse the message at all;
//   std::system_error (with errno) for temp file and stream I/O errors.
//   Limits never throw: they set limit_hit and limit_reason.
// CONCURRENCY
//   Each call owns its parser, streams and objects; GMime's globals are
//   only read after mime_init(). Different messages may be walked on
//   different threads. One spool must not be walked by two threads at
//   once: GMime's fs stream seeks the file offset that dup() shares.
#include "icap-milter/mime/walker.hpp"

#include "icap-milter/common/ascii.hpp"
#include "icap-milter/common/sha256.hpp"
#include "icap-milter/mime/base64_reader.hpp"
#include "icap-milter/mime/census.hpp"
#include "icap-milter/mime/encryption.hpp"
#include "icap-milter/mime/gmime_fields.hpp"
#include "icap-milter/mime/header_lint.hpp"
#include "icap-milter/mime/inline_encodings.hpp"
#include "icap-milter/mime/views.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace icapm {

namespace {

constexpr std::size_t kChunk = 64 * 1024;

// A message is refused to GMime (and scanned whole) when it has more
// than this many candidate part starts per allowed part: each costs
// GMime an object, and 4x leaves room for text lines that merely start
// with "--" (signatures, SQL comments, CSS variables).
constexpr std::uint64_t kCensusFactor = 4;
constexpr std::uint64_t kCensusSlack = 64;
// Likewise each header field costs GMime about 450 bytes, so a 30 MB
// block of "X: y" lines would take 2.5 GB and 20 s. Real mail has a few
// dozen headers per part; 50 per part also leaves room for body lines
// that look like headers ("Note: ...", URLs).
constexpr std::uint64_t kHeaderFactor = 50;
constexpr std::uint64_t kHeaderSlack = 1000;
// Inline-encoded blocks decoded per text item; more make the message
// suspect (the scanner's whole-message reading must cover them).
constexpr unsigned kMaxInlineBlocks = 16;
// Reasons kept per list (ambiguities, suspects); more are only counted.
constexpr std::size_t kMaxReasons = 16;

// Severity - what a finding does to the message: nothing (a note for
// the log), suspect (the whole-message view must cover it) or ambiguous
// (fail closed).
enum class Severity { Note, Suspect, Ambiguous };

// severity - GMime's parser warnings sorted by what they put at stake.
// Conflicting Content-Type / Content-Transfer-Encoding fields and
// parameters are judged by header_lint.cpp (GMime flags any conflicting
// parameter, charset included), so GMime's own conflict codes are only
// suspect here.
Severity severity(GMimeParserWarning w) {
    switch (w) {
    case GMIME_CRIT_INVALID_HEADER_NAME: // readers end the header block there, or skip the line
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
    case GMIME_CRIT_NESTING_OVERFLOW: return Severity::Ambiguous;
    case GMIME_CRIT_CONFLICTING_HEADER:
    case GMIME_CRIT_CONFLICTING_PARAMETER:
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
    case GMIME_WARN_MALFORMED_MULTIPART:
    case GMIME_WARN_TRUNCATED_MESSAGE:
    case GMIME_WARN_MALFORMED_MESSAGE: return Severity::Suspect;
    default: return Severity::Note;
    }
}

// where - the prefix of a reason: "part 1.2: ", or "" for the message.
std::string where(const std::string& id) { return id.empty() ? std::string() : "part " + id + ": "; }

// prefix_related - one boundary is a prefix of the other (or both are
// equal): a reader matching delimiter lines by prefix ends the wrong
// multipart there.
bool prefix_related(const std::string& a, const std::string& b) {
    return a.size() <= b.size() ? b.compare(0, a.size(), a) == 0 : a.compare(0, b.size(), b) == 0;
}

// child_id - the MIME path of child n (1-based) below prefix.
std::string child_id(const std::string& prefix, int n) {
    return prefix.empty() ? std::to_string(n) : prefix + "." + std::to_string(n);
}

// is_message_type - content types that carry a whole message.
bool is_message_type(const std::string& type) {
    return type == "message/rfc822" || type == "message/global" || type == "message/news";
}

// size_reason - the text for an item over the scan size limit.
std::string size_reason(std::uint64_t size, std::uint64_t max) {
    return "size limit (" + std::to_string(size) + " > " + std::to_string(max) + " bytes)";
}

// OptionsFree - release parser options.
struct OptionsFree {
    void operator()(GMimeParserOptions* p) const noexcept { g_mime_parser_options_free(p); }
};
using OptionsPtr = std::unique_ptr<GMimeParserOptions, OptionsFree>;

// take_census - one pass over the raw message.
Census take_census(const Spool& spool, std::vector<char>& buf) {
    LineCensus lc;
    auto src = spool.reader();
    for (std::size_t n; (n = src->read(buf)) > 0;) lc.feed(std::string_view(buf.data(), n));
    return lc.finish();
}

// Decoded - what decoding one leaf produced.
struct Decoded {
    std::uint64_t size = 0;
    Digest sha256{};
    std::shared_ptr<Spool> data; // null when not kept
};

// Walker - state of one walk: limits, counters, the result being built.
class Walker {
public:
    Walker(const WalkLimits& limits, WalkResult& result)
        : lim_(limits), res_(result), buf_(kChunk) {}

    // message - parse a raw message and walk its body at depth.
    bool message(const Spool& raw, const std::string& prefix, unsigned depth, bool top);
    // warn - note one GMime parser warning (called back during parsing).
    void warn(GMimeParserWarning code, const char* item);

private:
    void body(GMimeObject* body, const std::string& prefix, unsigned depth);
    void object(GMimeObject* o, const std::string& id, unsigned depth);
    void children(GMimeMultipart* mp, const std::string& id, const std::string& prefix,
                  unsigned depth);
    void leaf(GMimeObject* o, const std::string& id, unsigned depth);
    bool smime(ScanItem& it, Decoded& d, const std::string& id, unsigned depth);
    void boundless(GMimeMultipart* mp, const std::string& id);
    void encoded_message(GMimeObject* o, const std::string& id, unsigned depth);
    void inner_entity(const std::string& bytes, const std::string& id, unsigned depth);
    bool pgp_mime(GMimeMultipart* mp, const std::string& id, Decoded& cipher);
    void lint(GMimeObject* o, const std::string& id);
    void census_findings(const Census& c, const std::string& prefix);
    void delimiter_findings(const Spool& raw, const std::string& prefix);
    void finding(Severity sev, std::string why);
    void pgp_ciphertext(GMimeObject* o, const std::string& id, const Decoded& d);
    void empty_item(GMimeObject* o, const std::string& id);
    void outside_text(const char* text, const std::string& id, const char* name);
    void inline_blocks(const Spool& data, const std::string& id, bool text);
    ScanItem describe(GMimeObject* o, const std::string& id, const std::string& type) const;
    // Observer - sees each decoded chunk; returning false stops decoding.
    using Observer = std::function<bool(std::string_view)>;
    bool decode_into(GMimePart* part, const std::string& id, Sha256& hash, std::uint64_t& size, Spool* out,
                     std::uint64_t keep_max, const Observer& observe = {});
    Decoded decode(GMimePart* part, const std::string& id, bool keep, std::uint64_t keep_max);
    std::shared_ptr<Spool> new_spool();
    void push(ScanItem item);
    void note(std::string text);
    bool count_part();
    bool depth_ok(unsigned depth);
    void hit(std::string reason);

    const WalkLimits& lim_;
    WalkResult& res_;
    std::vector<char> buf_;
    bool stopped_ = false;
    std::uint64_t parts_ = 0;
    std::uint64_t mem_used_ = 0; // RAM held by spools of finished items
    std::uint64_t warnings_ = 0;
    std::uint64_t critical_ = 0; // ambiguous findings so far (any source)
    std::vector<std::string> boundaries_; // of the enclosing multiparts, outermost first
    std::vector<std::string> msg_boundaries_; // of every multipart in the raw text being walked
};

// on_warning - GMime's warning callback; user_data is the Walker.
void on_warning(gint64, GMimeParserWarning code, const gchar* item, gpointer user_data) {
    static_cast<Walker*>(user_data)->warn(code, item);
}

// warn - keep the first few warnings (a hostile message can raise one per
// line) and sort the ones that put the reading at stake.
void Walker::warn(GMimeParserWarning code, const char* item) {
    std::string w = warning_name(code);
    if (item && *item) w += " (" + printable(item) + ")";
    Severity sev = severity(code);
    if (sev != Severity::Note) finding(sev, "GMime: " + w);
    note(std::move(w));
}

// finding - record a reason as ambiguous or suspect (each list bounded,
// repeats dropped); a note only goes to the log.
void Walker::finding(Severity sev, std::string why) {
    if (sev == Severity::Note) {
        note(std::move(why));
        return;
    }
    if (sev == Severity::Ambiguous) ++critical_;
    auto& list = sev == Severity::Ambiguous ? res_.ambiguities : res_.suspects;
    if (std::find(list.begin(), list.end(), why) != list.end()) return;
    if (list.size() < kMaxReasons)
        list.push_back(std::move(why));
    else if (list.size() == kMaxReasons)
        list.push_back("more reasons not shown");
}

// lint - the header checks of one entity (header_lint.cpp).
void Walker::lint(GMimeObject* o, const std::string& id) {
    LintFindings f;
    lint_entity_headers(header_fields(o), f);
    for (auto& why : f.ambiguous) finding(Severity::Ambiguous, where(id) + why);
    for (auto& why : f.suspect) finding(Severity::Suspect, where(id) + why);
}

// census_findings - line shapes that readers split differently.
void Walker::census_findings(const Census& c, const std::string& prefix) {
    std::string at = prefix.empty() ? std::string() : "message " + prefix + ": ";
    if (c.bare_cr_delimiters > 0)
        finding(Severity::Ambiguous, at + std::to_string(c.bare_cr_delimiters) +
                                         " delimiter line(s) holding a bare CR");
    if (c.bare_cr_headers > 0)
        finding(Severity::Ambiguous, at + std::to_string(c.bare_cr_headers) + " header line(s) holding a bare CR");
    if (c.lf_delimiters > 0 && c.crlf_lines > 0)
        finding(Severity::Ambiguous, at + std::to_string(c.lf_delimiters) +
                                         " delimiter line(s) ending in a bare LF among CRLF lines");
    if (c.nul_headers > 0)
        finding(Severity::Ambiguous, at + std::to_string(c.nul_headers) + " header line(s) holding a NUL byte");
    if (c.long_content_headers > 0)
        finding(Severity::Ambiguous, at + std::to_string(c.long_content_headers) +
                                         " Content- header line(s) longer than 998 bytes");
}

// note - keep the first few notes for the log (a hostile message can
// raise one per line), then only count them.
void Walker::note(std::string text) {
    constexpr std::uint64_t kKept = 16;
    ++warnings_;
    if (warnings_ <= kKept)
        res_.warnings.push_back(std::move(text));
    else if (warnings_ == kKept + 1)
        res_.warnings.push_back("more warnings not shown");
}

// hit - record the first limit and stop walking.
void Walker::hit(std::string reason) {
    if (stopped_) return;
    stopped_ = true;
    res_.limit_hit = true;
    res_.limit_reason = std::move(reason);
}

// count_part - count one more object; false once max_parts is passed.
bool Walker::count_part() {
    if (stopped_) return false;
    if (++parts_ > lim_.max_parts) {
        hit("part count limit (more than " + std::to_string(lim_.max_parts) + " parts)");
        return false;
    }
    return true;
}

// depth_ok - may objects live at this nesting depth?
bool Walker::depth_ok(unsigned depth) {
    if (stopped_) return false;
    if (depth > lim_.max_depth) {
        hit("depth limit (more than " + std::to_string(lim_.max_depth) + " levels of nesting)");
        return false;
    }
    return true;
}

// new_spool - a spool for one decoded part, within the message's RAM budget.
std::shared_ptr<Spool> Walker::new_spool() {
    std::uint64_t left = lim_.total_memory_limit > mem_used_ ? lim_.total_memory_limit - mem_used_ : 0;
    std::size_t limit = static_cast<std::size_t>(std::min<std::uint64_t>(lim_.memory_limit, left));
    return std::make_shared<Spool>(lim_.temp_dir, limit, lim_.budget);
}

// push - add an item, charging its in-memory bytes to the budget.
void Walker::push(ScanItem item) {
    if (item.data && !item.data->on_disk()) mem_used_ += item.data->size();
    res_.items.push_back(std::move(item));
}

// message - parse raw with GMime and walk the body; false if unparsable.
bool Walker::message(const Spool& raw, const std::string& prefix, unsigned depth, bool top) {
    std::uint64_t room = lim_.max_parts > parts_ ? lim_.max_parts - parts_ : 0;
    Census c = take_census(raw, buf_);
    census_findings(c, prefix);
    std::uint64_t budget = kCensusFactor * room + kCensusSlack;
    if (c.delimiters + c.content_types > budget) {
        hit("part count limit (" + std::to_string(c.delimiters) + " boundary and " +
            std::to_string(c.content_types) + " Content-Type lines, too many for " +
            std::to_string(lim_.max_parts) + " parts)");
        return true;
    }
    std::uint64_t header_budget = kHeaderFactor * room + kHeaderSlack;
    if (c.headers > header_budget) {
        hit("header limit (" + std::to_string(c.headers) + " header lines, more than " +
            std::to_string(header_budget) + " for " + std::to_string(lim_.max_parts) + " parts)");
        return true;
    }

    // Declared first so it outlives the objects parsed with it.
    OptionsPtr options(g_mime_parser_options_new());
    g_mime_parser_options_set_warning_callback(options.get(), on_warning, this);
    GObjectPtr<GMimeStream> stream = open_stream(raw);
    GObjectPtr<GMimeParser> parser = adopt(g_mime_parser_new_with_stream(stream.get()));
    g_mime_parser_set_persist_stream(parser.get(), TRUE);
    g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
    GObjectPtr<GMimeMessage> msg = adopt(g_mime_parser_construct_message(parser.get(), options.get()));
    if (!msg) return false;

    GMimeObject* b = g_mime_message_get_mime_part(msg.get());
    if (!b) {
        if (top) hit("no MIME body found");
        return true;
    }
    if (top && GMIME_IS_MULTIPART(b)) {
        res_.preamble = str(g_mime_multipart_get_prologue(GMIME_MULTIPART(b)));
        res_.epilogue = str(g_mime_multipart_get_epilogue(GMIME_MULTIPART(b)));
    }
    // Boundaries belong to the raw text they were found in: a message
    // decoded from base64 has lines of its own.
    struct Restore {
        Walker& w;
        std::vector<std::string> stack, all;
        ~Restore() {
            w.boundaries_ = std::move(stack);
            w.msg_boundaries_ = std::move(all);
        }
    } restore{*this, std::exchange(boundaries_, {}), std::exchange(msg_boundaries_, {})};
    body(b, prefix, depth);
    if (!msg_boundaries_.empty()) delimiter_findings(raw, prefix);
    return true;
}

// delimiter_findings - lines a prefix-matching reader takes for
// delimiters of this message's boundaries where GMime did not.
void Walker::delimiter_findings(const Spool& raw, const std::string& prefix) {
    DelimiterLines lines(msg_boundaries_);
    auto src = raw.reader();
    for (std::size_t n; (n = src->read(buf_)) > 0;) lines.feed(std::string_view(buf_.data(), n));
    if (std::uint64_t found = lines.finish(); found > 0)
        finding(Severity::Ambiguous, (prefix.empty() ? std::string() : "message " + prefix + ": ") +
                                         std::to_string(found) +
                                         " line(s) starting with a delimiter and going on with text");
}

// body - walk a message body: a multipart's children are numbered
// directly below the message, anything else is part 1 of it.
void Walker::body(GMimeObject* b, const std::string& prefix, unsigned depth) {
    if (GMIME_IS_MULTIPART(b)) {
        if (!count_part()) return;
        lint(b, prefix);
        children(GMIME_MULTIPART(b), child_id(prefix, 1), prefix, depth + 1);
        return;
    }
    object(b, child_id(prefix, 1), depth);
}

// children - walk the parts of multipart id, which live at depth and
// are numbered below prefix.
void Walker::children(GMimeMultipart* mp, const std::string& id, const std::string& prefix,
                      unsigned depth) {
    if (!depth_ok(depth)) return;
    int n = g_mime_multipart_get_count(mp);
    if (n == 0) {
        boundless(mp, id);
        return;
    }
    // A reader matching delimiter lines by prefix (RFC 2046 asks for the
    // whole boundary, then blanks) ends the wrong multipart when one
    // boundary starts another.
    std::string boundary = str(g_mime_multipart_get_boundary(mp));
    for (const auto& outer : boundaries_) {
        if (prefix_related(boundary, outer)) {
            finding(Severity::Ambiguous, where(id) + "boundary \"" + printable(boundary.c_str(), 40) +
                                             "\" and an enclosing one \"" + printable(outer.c_str(), 40) +
                                             "\" start alike");
            break;
        }
    }
    // GMime clears write_end_boundary (a field it keeps private, but
    // public in the struct) when the close delimiter never came.
    if (!mp->write_end_boundary)
        finding(Severity::Suspect, where(id) + "multipart without its close delimiter");
    boundaries_.push_back(boundary);
    if (msg_boundaries_.size() < 256) msg_boundaries_.push_back(boundary);
    struct Pop {
        std::vector<std::string>& v;
        ~Pop() { v.pop_back(); }
    } pop{boundaries_};
    // Of a genuine PGP/MIME message only the ciphertext (the second
    // part) is left unscanned; of anything else calling itself
    // multipart/encrypted, every part is walked.
    Decoded cipher;
    int cipher_at = -1;
    if (mime_type(GMIME_OBJECT(mp)) == "multipart/encrypted") {
        if (pgp_mime(mp, id, cipher))
            cipher_at = 1;
        else
            note("multipart/encrypted that is not PGP/MIME: scanned as multipart");
    }
    // Named after the prefix, not id: a multipart and its first child
    // share an id ("1"), their preambles must not.
    std::string outside = prefix.empty() ? std::string() : prefix + ".";
    outside_text(g_mime_multipart_get_prologue(mp), outside + "preamble", "preamble.txt");
    for (int i = 0; i < n && !stopped_; ++i) {
        GMimeObject* child = g_mime_multipart_get_part(mp, i);
        if (!child) continue;
        if (i == cipher_at) {
            if (count_part()) pgp_ciphertext(child, child_id(prefix, i + 1), cipher);
        } else {
            object(child, child_id(prefix, i + 1), depth);
        }
    }
    outside_text(g_mime_multipart_get_epilogue(mp), outside + "epilogue", "epilogue.txt");
}

// pgp_mime - is mp PGP/MIME (RFC 3156)? protocol application/pgp-encrypted,
// exactly two leaves: a control part saying "Version: 1", then an
// application/octet-stream holding one encrypted OpenPGP message. The
// second part's decoded size and hash are left in cipher.
bool Walker::pgp_mime(GMimeMultipart* mp, const std::string& id, Decoded& cipher) {
    if (content_type_param(GMIME_OBJECT(mp), "protocol") != "application/pgp-encrypted") return false;
    if (g_mime_multipart_get_count(mp) != 2) return false;
    GMimeObject* control = g_mime_multipart_get_part(mp, 0);
    GMimeObject* data = g_mime_multipart_get_part(mp, 1);
    if (!control || !data || !GMIME_IS_PART(control) || !GMIME_IS_PART(data)) return false;
    if (mime_type(control) != "application/pgp-encrypted" ||
        mime_type(data) != "application/octet-stream")
        return false;
    constexpr std::uint64_t kControlMax = 1024;
    Decoded c = decode(GMIME_PART(control), child_id(id, 1), true, kControlMax);
    if (!c.data || c.data->size() > kControlMax) return false;
    std::string body;
    auto r = c.data->reader();
    for (std::size_t n; (n = r->read(buf_)) > 0;) body.append(buf_.data(), n);
    if (!is_pgp_control_body(body)) return false;
    // One pass: hash the ciphertext while checking it, stop at the first
    // byte that cannot be OpenPGP.
    OpenPgpCheck check;
    Sha256 hash;
    bool complete = decode_into(GMIME_PART(data), child_id(id, 2), hash, cipher.size, nullptr, 0,
                                [&check](std::string_view chunk) { return check.feed(chunk); });
    if (!complete || !check.finish()) return false;
    cipher.sha256 = hash.finish();
    return true;
}

// pgp_ciphertext - the OpenPGP message of a genuine PGP/MIME part: kept
// out of the scan, with its decoded size and hash.
void Walker::pgp_ciphertext(GMimeObject* o, const std::string& id, const Decoded& d) {
    ScanItem it = describe(o, id, mime_type(o));
    it.size = d.size;
    it.sha256 = d.sha256;
    it.scannable = false;
    it.unscannable_reason = "encrypted (PGP/MIME)";
    push(std::move(it));
}

// object - one node of the tree: container, message or leaf.
void Walker::object(GMimeObject* o, const std::string& id, unsigned depth) {
    if (!count_part()) return;
    lint(o, id);
    std::string type = mime_type(o);
    if (type == "message/partial")
        finding(Severity::Ambiguous, where(id) + "message/partial fragment (" +
                                         printable(content_type_param(o, "number").c_str(), 8) + " of " +
                                         printable(content_type_param(o, "total").c_str(), 8) +
                                         "): the whole message is never in one piece");
    if (GMIME_IS_MULTIPART(o)) {
        children(GMIME_MULTIPART(o), id, id, depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(o)) {
        if (!depth_ok(depth + 1)) return;
        GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        GMimeObject* b = inner ? g_mime_message_get_mime_part(inner) : nullptr;
        if (b)
            body(b, id, depth + 1);
        else
            empty_item(o, id);
    } else if (GMIME_IS_PART(o)) {
        if (is_message_type(type))
            encoded_message(o, id, depth);
        else
            leaf(o, id, depth);
    }
    // GMime has no other kinds of object; anything new is skipped rather
    // than guessed at.
}

// describe - the descriptive fields of an item.
ScanItem Walker::describe(GMimeObject* o, const std::string& id, const std::string& type) const {
    ScanItem it;
    it.part_id = id;
    it.filename = filename(o);
    // A client may show either name; BlockedExtensions checks both.
    if (std::string n = str(g_mime_object_get_content_type_parameter(o, "name")); n != it.filename)
        it.type_name = n.substr(0, 1024);
    it.content_type = type;
    it.transfer_encoding = transfer_encoding(o);
    it.disposition = disposition(o);
    return it;
}

// empty_item - an item with no content (a message part without a message).
void Walker::empty_item(GMimeObject* o, const std::string& id) {
    ScanItem it = describe(o, id, mime_type(o));
    it.sha256 = Sha256().finish();
    it.data = new_spool();
    push(std::move(it));
}

// decode_into - stream-decode a part's content, hashing every byte and
// copying it to out while the total stays within keep_max; observe sees
// every chunk and may stop the decoding (then false is returned).
// Base64 goes through Base64Reader, which also says where other
// decoders would read other bytes (those make the message ambiguous);
// quoted-printable and uuencode through GMime's basic filter.
bool Walker::decode_into(GMimePart* part, const std::string& id, Sha256& hash, std::uint64_t& size, Spool* out,
                         std::uint64_t keep_max, const Observer& observe) {
    GMimeDataWrapper* wrapper = g_mime_part_get_content(part);
    GMimeStream* raw = wrapper ? g_mime_data_wrapper_get_stream(wrapper) : nullptr;
    if (!raw) return true; // a part without content decodes to nothing
    if (g_mime_stream_reset(raw) == -1)
        throw std::system_error(errno, std::generic_category(), "mime: rewind part stream");
    GObjectPtr<GMimeStream> filtered = adopt(g_mime_stream_filter_new(raw));
    GMimeContentEncoding enc = effective_encoding(GMIME_OBJECT(part));
    bool base64 = enc == GMIME_CONTENT_ENCODING_BASE64;
    if (enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE || enc == GMIME_CONTENT_ENCODING_UUENCODE) {
        GObjectPtr<GMimeFilter> f = adopt(g_mime_filter_basic_new(enc, FALSE));
        g_mime_stream_filter_add(GMIME_STREAM_FILTER(filtered.get()), f.get());
    }
    Base64Reader b64;
    std::string decoded;
    // emit - one decoded chunk: observed, hashed, stored.
    auto emit = [&](std::string_view chunk) {
        if (observe && !observe(chunk)) return false;
        hash.update(chunk);
        size += chunk.size();
        if (out) {
            if (size <= keep_max) {
                out->append(chunk);
            } else {
                out->clear(); // over the limit: keep hashing, stop storing
                out = nullptr;
            }
        }
        return true;
    };
    for (bool eof = false; !eof;) {
        // GMime's filter hands out about 3 KiB per read; gather a full
        // buffer so the spool sees one write (and SHA-256 one update)
        // per 64 KiB instead of per 3 KiB.
        std::size_t fill = 0;
        while (fill < buf_.size()) {
            errno = 0;
            ssize_t n = g_mime_stream_read(filtered.get(), buf_.data() + fill, buf_.size() - fill);
            if (n > 0) {
                fill += static_cast<std::size_t>(n);
                continue;
            }
            if (n < 0 && !g_mime_stream_eos(filtered.get()))
                throw std::system_error(errno ? errno : EIO, std::generic_category(), "mime: read part content");
            eof = true;
            break;
        }
        if (fill == 0) break;
        std::string_view chunk(buf_.data(), fill);
        if (base64) {
            decoded.clear();
            b64.decode(chunk, decoded);
            chunk = decoded;
        }
        if (!chunk.empty() && !emit(chunk)) return false;
    }
    if (!base64) return true;
    decoded.clear();
    b64.finish(decoded);
    if (!decoded.empty() && !emit(decoded)) return false;
    const Base64Anomalies& a = b64.anomalies();
    if (a.junk > 0)
        finding(Severity::Ambiguous, where(id) + "base64 holding " + std::to_string(a.junk) +
                                         " character(s) outside its alphabet (readers skip them or stop there)");
    if (a.data_after_padding)
        finding(Severity::Ambiguous, where(id) + "base64 data after '=' padding (readers stop there or go on)");
    if (a.dangling_bits) note(where(id) + "base64 ending one character into a quantum");
    return true;
}

// decode - decode one part into a fresh spool (if keep) plus size and hash.
Decoded Walker::decode(GMimePart* part, const std::string& id, bool keep, std::uint64_t keep_max) {
    Decoded d;
    Sha256 hash;
    if (keep) d.data = new_spool();
    decode_into(part, id, hash, d.size, d.data.get(), keep_max);
    d.sha256 = hash.finish();
    if (d.size > keep_max) d.data.reset();
    return d;
}

// leaf - one ordinary part: decoded, hashed, kept if it may be scanned.
void Walker::leaf(GMimeObject* o, const std::string& id, unsigned depth) {
    std::string type = mime_type(o);
    ScanItem it = describe(o, id, type);
    Decoded d = decode(GMIME_PART(o), id, true, lim_.max_scan_size);
    it.size = d.size;
    it.sha256 = d.sha256;
    if (d.size > lim_.max_scan_size) {
        // Too big to check for ciphertext, and too big to scan anyway.
        it.scannable = false;
        it.unscannable_reason = size_reason(d.size, lim_.max_scan_size);
    } else if (is_pkcs7_mime_type(type) && smime(it, d, id, depth)) {
        return;
    } else {
        it.data = std::move(d.data);
    }
    std::shared_ptr<const Spool> data = it.data;
    push(std::move(it));
    if (data) inline_blocks(*data, id, type.compare(0, 5, "text/") == 0);
}

// outside_text - a multipart's preamble or epilogue as an item of its
// own (unless it is only whitespace), searched for inline blocks too.
void Walker::outside_text(const char* text, const std::string& id, const char* name) {
    if (!text || blank(text) || !count_part()) return;
    std::string_view v(text);
    ScanItem it;
    it.part_id = id;
    it.filename = name;
    it.content_type = "text/plain";
    it.transfer_encoding = "7bit";
    it.size = v.size();
    Sha256 hash;
    hash.update(v);
    it.sha256 = hash.finish();
    if (it.size > lim_.max_scan_size) {
        it.scannable = false;
        it.unscannable_reason = size_reason(it.size, lim_.max_scan_size);
        push(std::move(it));
        return;
    }
    std::shared_ptr<Spool> data = new_spool();
    data->append(v);
    it.data = data;
    push(std::move(it));
    inline_blocks(*data, id, true);
}

// inline_blocks - decode the uuencode, yEnc and BinHex blocks in a text
// item's bytes into items of their own below id. Anything but text/*
// is searched only when its first bytes hold no NUL. The hash of a
// block over max_scan_size covers the bytes kept, not all it decodes to.
void Walker::inline_blocks(const Spool& data, const std::string& id, bool text) {
    unsigned n = 0;
    InlineExtractor ex(lim_.max_scan_size, kMaxInlineBlocks, [&](InlineBlock&& b) {
        if (!count_part()) return;
        static constexpr const char* kLetter[] = {"u", "y", "b"};
        ScanItem it;
        it.part_id = id + "." + kLetter[static_cast<int>(b.kind)] + std::to_string(++n);
        it.filename = std::move(b.name);
        it.content_type = "application/octet-stream";
        it.transfer_encoding = std::string("x-") + inline_kind_name(b.kind);
        it.disposition = "attachment";
        it.size = b.size;
        Sha256 hash;
        hash.update(b.data);
        it.sha256 = hash.finish();
        if (b.size > lim_.max_scan_size) {
            it.scannable = false;
            it.unscannable_reason = size_reason(b.size, lim_.max_scan_size);
        } else {
            std::shared_ptr<Spool> s = new_spool();
            s->append(b.data);
            it.data = std::move(s);
        }
        b.data = std::string();
        push(std::move(it));
    });
    auto r = data.reader();
    bool first = true;
    for (std::size_t got; !stopped_ && (got = r->read(buf_)) > 0; first = false) {
        std::string_view chunk(buf_.data(), got);
        if (first && !text && chunk.find('\0') != std::string_view::npos) return;
        ex.feed(chunk);
    }
    if (stopped_) return;
    ex.finish();
    if (ex.skipped() > 0)
        finding(Severity::Suspect, where(id) + std::to_string(ex.skipped()) + " more inline-encoded blocks than " +
                                       std::to_string(kMaxInlineBlocks) + ", not decoded here");
}

// smime - an application/pkcs7-mime leaf, judged by its bytes whatever
// its smime-type says: envelopedData is unscannable, compressedData too
// (the scanner cannot inflate it); signedData is scanned as it is and
// its content walked below it (id.1, ...). True when the item has been
// pushed; false leaves a plain leaf to the caller.
bool Walker::smime(ScanItem& it, Decoded& d, const std::string& id, unsigned depth) {
    std::string der;
    if (d.data) {
        der.reserve(static_cast<std::size_t>(d.data->size()));
        auto r = d.data->reader();
        for (std::size_t n; (n = r->read(buf_)) > 0;) der.append(buf_.data(), n);
    }
    CmsInfo cms = inspect_cms(der);
    der = std::string();
    switch (cms.kind) {
    case CmsKind::kEnveloped:
    case CmsKind::kCompressed:
        it.scannable = false;
        it.unscannable_reason =
            cms.kind == CmsKind::kEnveloped ? "encrypted (S/MIME)" : "compressed (S/MIME)";
        push(std::move(it));
        return true;
    case CmsKind::kSigned:
        it.data = std::move(d.data);
        push(std::move(it));
        if (cms.has_content && !cms.content.empty()) inner_entity(cms.content, id, depth);
        return true;
    case CmsKind::kNotCms:
        note("application/pkcs7-mime that is not CMS: scanned as a part");
        return false;
    case CmsKind::kOther:
        break;
    }
    return false;
}

// inner_entity - the MIME entity inside opaque signedData, walked like a
// message below id; if GMime makes nothing of it the signedData item,
// already scanned, still covers its bytes.
void Walker::inner_entity(const std::string& bytes, const std::string& id, unsigned depth) {
    if (!depth_ok(depth + 1)) return;
    std::shared_ptr<Spool> s = new_spool();
    s->append(bytes);
    std::uint64_t held = s->on_disk() ? 0 : s->size();
    mem_used_ += held;
    message(*s, id, depth + 1, false);
    mem_used_ -= held;
}

// boundless - a multipart in which GMime found no part (no boundary
// parameter, or a boundary that never occurs): its whole body ended up
// as prologue and epilogue, so those become the item, or the bytes would
// reach no scanner.
void Walker::boundless(GMimeMultipart* mp, const std::string& id) {
    GMimeObject* o = GMIME_OBJECT(mp);
    ScanItem it = describe(o, id, mime_type(o));
    std::shared_ptr<Spool> data = new_spool();
    Sha256 hash;
    for (const char* text : {g_mime_multipart_get_prologue(mp), g_mime_multipart_get_epilogue(mp)}) {
        if (!text) continue;
        std::string_view v(text);
        hash.update(v);
        it.size += v.size();
        if (it.size <= lim_.max_scan_size) data->append(v);
    }
    it.sha256 = hash.finish();
    if (it.size > lim_.max_scan_size) {
        it.scannable = false;
        it.unscannable_reason = size_reason(it.size, lim_.max_scan_size);
        data.reset();
    } else {
        it.data = data;
    }
    push(std::move(it));
    // Its text is searched for inline blocks like any text part.
    if (data) inline_blocks(*data, id, true);
}

// encoded_message - a message/rfc822 with base64 or quoted-printable
// transfer encoding: GMime leaves it opaque, so decode it and walk the
// message inside; if that cannot be parsed (or only with critical
// warnings), the decoded bytes are also scanned as a leaf.
void Walker::encoded_message(GMimeObject* o, const std::string& id, unsigned depth) {
    if (!depth_ok(depth + 1)) return;
    Decoded d = decode(GMIME_PART(o), id, true, std::numeric_limits<std::uint64_t>::max());
    // The temporary copy may hold RAM while the inner parts are walked.
    std::uint64_t held = d.data->on_disk() ? 0 : d.data->size();
    std::uint64_t critical_before = critical_;
    mem_used_ += held;
    bool parsed = d.size > 0 && message(*d.data, id, depth + 1, false);
    mem_used_ -= held;
    // If GMime had to guess (say the "message" is really an executable
    // whose bytes it read as bad headers and dropped), the decoded bytes
    // are scanned as they are as well.
    if (parsed && (critical_ == critical_before || stopped_)) return;

    ScanItem it = describe(o, id, mime_type(o));
    it.size = d.size;
    it.sha256 = d.sha256;
    if (d.size > lim_.max_scan_size) {
        it.scannable = false;
        it.unscannable_reason = size_reason(d.size, lim_.max_scan_size);
    } else {
        it.data = std::move(d.data);
    }
    push(std::move(it));
}

} // namespace

// mime_init - g_mime_init() exactly once, whichever thread gets here first.
void mime_init() {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
}

namespace {

// walk - walk_message's work: parse, walk, and add the whole-message
// view (part 0 reading shared when given): always when a limit stopped
// the walk (so nothing goes unscanned), and as limits.whole_message says
// otherwise. Suspect MIME needs the view to complete the union of
// readings: without it (mode Never, or a message over max_scan_size) the
// suspects become ambiguities.
WalkResult walk(const Spool& message, const WalkLimits& limits, std::shared_ptr<const Spool> shared) {
    mime_init();
    WalkResult result;
    Walker w(limits, result);
    if (!w.message(message, "", 0, true)) throw std::runtime_error("mime: message cannot be parsed");
    bool fits = message.size() <= limits.max_scan_size;
    bool wanted = result.limit_hit || limits.whole_message == WholeMessage::Always ||
                  (limits.whole_message == WholeMessage::Ambiguous &&
                   (!result.suspects.empty() || !result.ambiguities.empty()));
    if (!result.suspects.empty() && (limits.whole_message == WholeMessage::Never || !fits)) {
        std::string why = limits.whole_message == WholeMessage::Never
                              ? " (ScanWholeMessage never: no scanner reads the whole message)"
                              : " (the message is over MaxScanSize for the whole-message view)";
        for (const auto& s : result.suspects) result.ambiguities.push_back(s + why);
        result.suspects.clear();
    }
    if (wanted && fits) {
        result.items.push_back(whole_message_item(message, limits, std::move(shared)));
    } else if (wanted) {
        // A limit's fallback item is then unscannable (size) and says so;
        // otherwise the view is a second reading only and is skipped.
        if (result.limit_hit)
            result.items.push_back(whole_message_item(message, limits));
        else
            result.warnings.push_back("too large for the whole-message view");
    }
    // The decoded text views have their own size bound: a message too
    // big for part 0 still gets them.
    if (limits.whole_message == WholeMessage::Always) add_text_view(result, limits);
    return result;
}

} // namespace

WalkResult walk_message(const Spool& message, const WalkLimits& limits) { return walk(message, limits, nullptr); }

WalkResult walk_message(std::shared_ptr<const Spool> message, const WalkLimits& limits) {
    const Spool& raw = *message;
    return walk(raw, limits, std::move(message));
}

} // namespace icapm
