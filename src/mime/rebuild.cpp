// NAME
//   rebuild.cpp - new MIME bodies for the notify and clean actions
// SUMMARY
//   Texts become bodies through encode_text(): us-ascii/7bit when that is
//   safe, else quoted-printable (utf-8 when any byte is 8-bit). A 7bit
//   line that a prefix-matching reader could take for a delimiter of the
//   message forces quoted-printable, which writes a '-' opening any line
//   as "=2D": a rendered file or virus name cannot end a multipart.
//   Cleaning splices the raw bytes; GMime is only asked for the tree.
//   GMime parses the message over a persistent stream (as the walker
//   does), then every entity is located in the raw bytes by its own
//   scan: a header block ends at the first empty line, a multipart's
//   parts lie between its delimiter lines ("--" boundary, blanks, line
//   end, RFC 2046), the line end before a delimiter belonging to the
//   delimiter. The two readings must agree: the same number of parts,
//   the same close delimiter, and each leaf's content where GMime's
//   substream says it is; an enclosing boundary that is a prefix of an
//   inner one, a header line that is no header, a delimiter without a
//   line end: anything else gives up. Each part id is then resolved
//   along the walker's numbering to the outermost entity that holds it
//   in the raw bytes, overlapping picks are merged, and the picks are
//   spliced in, every other byte copied as it was.
//   Line ends: the milter spools CRLF; a message in bare LF keeps its
//   LF, and new parts follow the line end of the top-level blank line.
//   Bounds: 64 MiB of message (held in memory once, plus GMime's tree),
//   the walker's line census limits before GMime sees it, 32 levels.
// DIAGNOSTICS
//   clean_message() returns std::nullopt for every case it cannot do
//   beyond doubt; std::system_error when the spool cannot be read.
// CONCURRENCY
//   As walk_message: one spool is not to be read by two GMime parses at
//   once (a file stream seeks the offset its dup shares).
#include "icap-milter/mime/rebuild.hpp"

#include "icap-milter/common/ascii.hpp"
#include "icap-milter/mime/census.hpp"
#include "icap-milter/mime/gmime_fields.hpp"
#include "icap-milter/mime/walker.hpp"

#include <gmime/gmime.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace icapm {

namespace {

constexpr std::uint64_t kMaxMessage = 64ull << 20;
constexpr unsigned kMaxDepth = 32;      // entity levels; the walker stops at 16 by default
constexpr std::size_t kMaxLine = 998;      // RFC 5322 line limit, CRLF excluded
constexpr std::size_t kQpLine = 76;        // RFC 2045 encoded line limit
constexpr std::size_t kMaxReplacements = 1000;
// The walker's census bounds for its default 1000 parts (walker.cpp):
// GMime costs about 2 KB per delimiter line and 450 bytes per header.
constexpr std::uint64_t kMaxDelimiterLines = 4 * 1000 + 64;
constexpr std::uint64_t kMaxHeaderLines = 50 * 1000 + 1000;

// Encoded - a text made ready to be a MIME body.
struct Encoded {
    std::string charset;  // "us-ascii" or "utf-8"
    std::string encoding; // "7bit" or "quoted-printable"
    std::string body;     // lines joined by the line end, no final one added
};

// split_lines - text cut at LF, a CR before each LF dropped.
std::vector<std::string_view> split_lines(std::string_view text) {
    std::vector<std::string_view> lines;
    for (;;) {
        std::size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        if (nl != std::string_view::npos && !line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        if (nl == std::string_view::npos) return lines;
        text.remove_prefix(nl + 1);
    }
}

// delimiter_like - a line that a reader matching boundaries as prefixes
// takes for a delimiter of one of these boundaries.
bool delimiter_like(std::string_view line, const std::vector<std::string>& boundaries) {
    if (line.substr(0, 2) != "--") return false;
    line.remove_prefix(2);
    return std::any_of(boundaries.begin(), boundaries.end(),
                       [&](const std::string& b) { return line.substr(0, b.size()) == b; });
}

// qp_line - one line in quoted-printable, soft-broken within 76 columns;
// a '-' that would open an encoded line is written "=2D".
void qp_line(std::string_view line, std::string_view eol, std::string& out) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::size_t col = 0;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const auto c = static_cast<unsigned char>(line[i]);
        const bool last = i + 1 == line.size();
        auto token = [&](std::size_t at) {
            bool literal = (c >= 33 && c <= 126 && c != '=' && !(c == '-' && at == 0)) ||
                           ((c == ' ' || c == '\t') && !last);
            return literal ? std::string(1, static_cast<char>(c))
                           : std::string{'=', kHex[c >> 4], kHex[c & 15]};
        };
        std::string t = token(col);
        // Room for the soft break's '=' unless this token ends the line.
        if (col + t.size() > (last ? kQpLine : kQpLine - 1)) {
            out += '=';
            out += eol;
            col = 0;
            t = token(0);
        }
        out += t;
        col += t.size();
    }
}

// encode_text - text as a body: 7bit when it is ASCII without NUL or
// bare CR, with lines of 998 bytes at most, none delimiter-like; else
// quoted-printable. Line ends become eol.
Encoded encode_text(std::string_view text, std::string_view eol, const std::vector<std::string>& boundaries) {
    std::vector<std::string_view> lines = split_lines(text);
    bool ascii = std::none_of(text.begin(), text.end(), [](char c) { return (c & 0x80) != 0; });
    bool seven = ascii;
    for (std::string_view l : lines) {
        if (!seven) break;
        seven = l.size() <= kMaxLine && l.find_first_of(std::string_view("\0\r", 2)) == std::string_view::npos &&
                !delimiter_like(l, boundaries);
    }
    Encoded e;
    e.charset = ascii ? "us-ascii" : "utf-8";
    e.encoding = seven ? "7bit" : "quoted-printable";
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (i > 0) e.body += eol;
        if (seven)
            e.body += lines[i];
        else
            qp_line(lines[i], eol, e.body);
    }
    return e;
}

// content_edits - the top-level header edits for a text/plain body.
std::vector<MimeHeaderEdit> content_edits(const Encoded& e) {
    std::vector<MimeHeaderEdit> h = {
        {"MIME-Version", "1.0", false},
        {"Content-Type", "text/plain; charset=" + e.charset, false},
        {"Content-Transfer-Encoding", e.encoding, false},
    };
    for (const char* name : {"Content-Disposition", "Content-ID", "Content-Description", "Content-Location",
                             "Content-MD5", "Content-Language"})
        h.push_back({name, "", true});
    return h;
}

// part_bytes - a whole text/plain entity (headers, blank line, body).
std::string part_bytes(const Encoded& e, std::string_view eol) {
    std::string p;
    p.append("Content-Type: text/plain; charset=").append(e.charset).append(eol);
    p.append("Content-Transfer-Encoding: ").append(e.encoding).append(eol);
    p.append("Content-Disposition: inline").append(eol).append(eol);
    p.append(e.body);
    return p;
}

// notice - text fit for a preamble or epilogue (no headers say what it
// is): printable ASCII, a '-' opening a line preceded by a space, lines
// cut at 998 bytes.
std::string notice(std::string_view text, std::string_view eol) {
    std::string out;
    bool first = true;
    for (std::string_view l : split_lines(text)) {
        if (!first) out += eol;
        first = false;
        std::string line = !l.empty() && l.front() == '-' ? " " : "";
        for (char c : l) line += (c == '\t' || (c >= 32 && c <= 126)) ? c : '?';
        out += line.substr(0, kMaxLine);
    }
    return out;
}

// Range - [begin, end) of the raw message.
struct Range {
    std::size_t begin = 0;
    std::size_t end = 0;
    bool operator==(const Range&) const = default;
};

// Node - one entity of the message as found in the raw bytes.
struct Node {
    enum class Kind { Leaf, Multipart, Message } kind = Kind::Leaf;
    Range entity;               // its header block and body (a message body: the body only)
    Range preamble, epilogue;   // multipart: between body start and first delimiter, after the close one
    GMimeMultipart* mp = nullptr; // multipart: GMime's reading (borrowed from the parsed message)
    bool opaque = false;        // leaf whose decoded bytes the walker walks again (encoded message, CMS)
    std::vector<Node> children; // multipart: its parts; message: the inner message's body
};

// Delimiter - one delimiter line of a multipart.
struct Delimiter {
    std::size_t start = 0; // first byte of the line
    std::size_t next = 0;  // first byte after its line end
    bool eol = false;      // the line has a line end
    bool close = false;    // "--boundary--"
};

// blanks - only spaces and tabs (RFC 2046 transport padding).
bool blanks(std::string_view s) {
    return s.find_first_not_of(" \t") == std::string_view::npos;
}

// prefix_related - one boundary starts with the other.
bool prefix_related(const std::string& a, const std::string& b) {
    return a.size() <= b.size() ? b.compare(0, a.size(), a) == 0 : a.compare(0, b.size(), b) == 0;
}

// Mapper - locates GMime's entities in the raw bytes, and checks that
// its reading and GMime's agree.
class Mapper {
public:
    explicit Mapper(const std::string& raw) : s_(raw) {}

    // header_end - where the body starts after the header block at b
    // (e if the block runs to e); nullopt when a line is no header field.
    std::optional<std::size_t> header_end(std::size_t b, std::size_t e) const;
    // node - map object o, whose entity is entity and content starts at body.
    bool node(GMimeObject* o, Range entity, std::size_t body, unsigned depth, Node& out);

    std::vector<std::string> all_boundaries; // every boundary met, for the 7bit check

private:
    bool multipart(GMimeMultipart* mp, std::size_t body, unsigned depth, Node& out);
    bool leaf(GMimeObject* o, const Node& n, std::size_t body) const;
    std::vector<Delimiter> delimiters(std::size_t b, std::size_t e, const std::string& boundary) const;
    std::size_t before_eol(std::size_t line_start, std::size_t floor) const;

    const std::string& s_;
    std::vector<std::string> open_; // boundaries of the enclosing multiparts
};

// header_end - field lines ("Name:", "Name :", folded lines) up to the
// first empty line.
std::optional<std::size_t> Mapper::header_end(std::size_t b, std::size_t e) const {
    for (std::size_t p = b; p < e;) {
        std::size_t nl = s_.find('\n', p);
        bool lf = nl != std::string::npos && nl < e;
        std::size_t le = lf ? nl : e;
        if (lf && le > p && s_[le - 1] == '\r') --le;
        std::size_t next = lf ? nl + 1 : e;
        std::string_view line(s_.data() + p, le - p);
        if (line.empty()) return next;
        if (line.front() == ' ' || line.front() == '\t') {
            if (p == b) return std::nullopt; // a continuation of nothing
        } else {
            std::size_t i = 0;
            while (i < line.size() && line[i] > 32 && line[i] < 127 && line[i] != ':') ++i;
            if (i == 0) return std::nullopt;
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
            if (i == line.size() || line[i] != ':') return std::nullopt;
        }
        p = next;
    }
    return e;
}

// delimiters - the delimiter lines of boundary in [b, e), up to and
// including the close delimiter.
std::vector<Delimiter> Mapper::delimiters(std::size_t b, std::size_t e, const std::string& boundary) const {
    std::vector<Delimiter> found;
    for (std::size_t p = b; p < e;) {
        std::size_t nl = s_.find('\n', p);
        bool lf = nl != std::string::npos && nl < e;
        std::size_t le = lf ? nl : e;
        if (lf && le > p && s_[le - 1] == '\r') --le;
        std::string_view line(s_.data() + p, le - p);
        std::size_t next = lf ? nl + 1 : e;
        if (line.size() >= 2 + boundary.size() && line.substr(0, 2) == "--" &&
            line.substr(2, boundary.size()) == boundary) {
            std::string_view rest = line.substr(2 + boundary.size());
            if (rest.substr(0, 2) == "--" && blanks(rest.substr(2))) {
                found.push_back({p, next, lf, true});
                break; // what follows is epilogue
            }
            if (blanks(rest)) found.push_back({p, next, lf, false});
        }
        p = next;
    }
    return found;
}

// before_eol - the start of the line end that ends the line before
// line_start (the line end a delimiter owns), not below floor.
std::size_t Mapper::before_eol(std::size_t line_start, std::size_t floor) const {
    std::size_t p = line_start - 1; // the LF
    if (p > floor && s_[p - 1] == '\r') --p;
    return p;
}

// node - one object: multiparts and messages are descended into, leaves
// are checked against the bounds of GMime's content substream.
bool Mapper::node(GMimeObject* o, Range entity, std::size_t body, unsigned depth, Node& out) {
    if (depth > kMaxDepth || !o) return false;
    out.entity = entity;
    if (GMIME_IS_MULTIPART(o)) return multipart(GMIME_MULTIPART(o), body, depth, out);
    if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        GMimeObject* b = inner ? g_mime_message_get_mime_part(inner) : nullptr;
        if (!b) return true; // an empty message part: a leaf as far as ids go
        std::optional<std::size_t> ib = header_end(body, entity.end);
        if (!ib) return false;
        out.kind = Node::Kind::Message;
        out.children.emplace_back();
        return node(b, {*ib, entity.end}, *ib, depth + 1, out.children.back());
    }
    if (!GMIME_IS_PART(o)) return false;
    std::string type = mime_type(o);
    out.opaque = type == "message/rfc822" || type == "message/global" || type == "message/news" ||
                 type == "application/pkcs7-mime" || type == "application/x-pkcs7-mime";
    return leaf(o, out, body);
}

// leaf - GMime's content of a leaf lies where the byte scan put it: the
// end at the entity's end, the start after its header block.
bool Mapper::leaf(GMimeObject* o, const Node& n, std::size_t body) const {
    GMimeDataWrapper* w = g_mime_part_get_content(GMIME_PART(o));
    GMimeStream* st = w ? g_mime_data_wrapper_get_stream(w) : nullptr;
    if (!st) return body == n.entity.end; // no content: none was found either
    auto start = static_cast<std::uint64_t>(std::max<gint64>(st->bound_start, 0));
    auto end = st->bound_end < 0 ? static_cast<std::uint64_t>(s_.size()) : static_cast<std::uint64_t>(st->bound_end);
    return start == body && end == n.entity.end;
}

// multipart - the parts between the delimiter lines, which must be as
// many as GMime found, with the close delimiter where GMime found one.
bool Mapper::multipart(GMimeMultipart* mp, std::size_t body, unsigned depth, Node& out) {
    const std::size_t e = out.entity.end;
    std::string boundary = str(g_mime_multipart_get_boundary(mp));
    int count = g_mime_multipart_get_count(mp);
    std::vector<Delimiter> d = boundary.empty() ? std::vector<Delimiter>() : delimiters(body, e, boundary);
    if (count <= 0) {
        // GMime found no part: the whole body is one text (the walker's
        // "boundless" item), replaceable as a leaf. Unless this scan
        // found parts after all.
        return d.empty();
    }
    if (boundary.empty()) return false;
    for (const auto& outer : open_)
        if (prefix_related(boundary, outer)) return false;
    bool closed = !d.empty() && d.back().close;
    if (d.size() != static_cast<std::size_t>(count) + (closed ? 1 : 0)) return false;
    if (closed != static_cast<bool>(mp->write_end_boundary)) return false;
    all_boundaries.push_back(boundary);
    out.kind = Node::Kind::Multipart;
    out.mp = mp;
    out.preamble = {body, d[0].start > body ? before_eol(d[0].start, body) : body};
    out.epilogue = closed ? Range{d.back().next, e} : Range{e, e};
    open_.push_back(boundary);
    for (int i = 0; i < count; ++i) {
        const Delimiter& open = d[static_cast<std::size_t>(i)];
        if (!open.eol) return false; // a part glued to its delimiter line
        std::size_t cb = open.next;
        const std::size_t n = static_cast<std::size_t>(i) + 1; // the next delimiter (or the close one)
        std::size_t ce = n < d.size() ? before_eol(d[n].start, cb) : e;
        if (ce < cb) return false;
        GMimeObject* child = g_mime_multipart_get_part(mp, i);
        std::optional<std::size_t> hb = header_end(cb, ce);
        if (!hb) return false;
        out.children.emplace_back();
        if (!node(child, {cb, ce}, *hb, depth + 1, out.children.back())) return false;
    }
    open_.pop_back();
    return true;
}

// Pick - what one part id names in the raw bytes.
struct Pick {
    enum class Kind { Entity, Body, Preamble, Epilogue } kind = Kind::Entity;
    Range range;
    const Node* owner = nullptr; // the multipart of a preamble or epilogue
    std::vector<std::string> texts;
};

// ordinal - a walker child number ("1", "2", ...), 0 if it is none.
std::size_t ordinal(const std::string& c) {
    if (c.empty() || c.size() > 6 || c[0] < '1' || c[0] > '9') return 0;
    std::size_t n = 0;
    for (char ch : c) {
        if (ch < '0' || ch > '9') return 0;
        n = n * 10 + static_cast<std::size_t>(ch - '0');
    }
    return n;
}

// inline_block - a walker id of an inline block: "u1", "y2", "b3".
bool inline_block(const std::string& c) {
    return c.size() >= 2 && (c[0] == 'u' || c[0] == 'y' || c[0] == 'b') && ordinal(c.substr(1)) > 0;
}

// inside_leaf - c[i..] is an id the walker makes inside leaf n: one
// inline block last, and numbers, preambles and epilogues before it
// only in what the walker decodes and walks again.
bool inside_leaf(const Node& n, const std::vector<std::string>& c, std::size_t i) {
    for (std::size_t j = i; j < c.size(); ++j) {
        if (inline_block(c[j]) && j + 1 == c.size()) return true;
        if (!n.opaque || !(ordinal(c[j]) > 0 || c[j] == "preamble" || c[j] == "epilogue")) return false;
    }
    return true;
}

std::optional<Pick> body_pick(const Node& b, const std::vector<std::string>& c, std::size_t i, const Pick& self);

// object_pick - resolve c[i..] below object n, whose own pick is self:
// what lies inside a leaf (inline blocks, an encoded message, S/MIME
// content) is the leaf.
std::optional<Pick> object_pick(const Node& n, const std::vector<std::string>& c, std::size_t i, const Pick& self) {
    if (i == c.size()) return self;
    if (n.kind == Node::Kind::Leaf) return inside_leaf(n, c, i) ? std::optional<Pick>(self) : std::nullopt;
    if (n.kind == Node::Kind::Message) return body_pick(n.children.front(), c, i, self);
    if (c[i] == "preamble" || c[i] == "epilogue") {
        Pick p;
        p.kind = c[i] == "preamble" ? Pick::Kind::Preamble : Pick::Kind::Epilogue;
        p.range = c[i] == "preamble" ? n.preamble : n.epilogue;
        p.owner = &n;
        return p;
    }
    std::size_t k = ordinal(c[i]);
    if (k == 0 || k > n.children.size()) return std::nullopt;
    const Node& child = n.children[k - 1];
    Pick p;
    p.range = child.entity;
    return object_pick(child, c, i + 1, p);
}

// body_pick - resolve c[i..] in a message body: a multipart's parts are
// numbered right below the message, anything else is its part 1, which
// only the message's own pick can replace (its headers are the message's).
std::optional<Pick> body_pick(const Node& b, const std::vector<std::string>& c, std::size_t i, const Pick& self) {
    if (i == c.size()) return std::nullopt;
    if (b.kind == Node::Kind::Multipart) return object_pick(b, c, i, self);
    if (c[i] != "1") return std::nullopt;
    return object_pick(b, c, i + 1, self);
}

// split_id - "2.1.u1" as {"2", "1", "u1"}.
std::vector<std::string> split_id(std::string_view id) {
    std::vector<std::string> out;
    for (;;) {
        std::size_t dot = id.find('.');
        out.emplace_back(id.substr(0, dot));
        if (dot == std::string_view::npos) return out;
        id.remove_prefix(dot + 1);
    }
}

// add_text - join a text to a pick's texts (each once).
void add_text(Pick& p, const std::vector<std::string>& texts) {
    for (const auto& t : texts)
        if (std::find(p.texts.begin(), p.texts.end(), t) == p.texts.end()) p.texts.push_back(t);
}

// joined - a pick's texts, one after the other, each on lines of its own.
std::string joined(const Pick& p) {
    std::string out;
    for (const auto& t : p.texts) {
        if (!out.empty() && out.back() != '\n') out += '\n';
        out += t;
    }
    return out;
}

// outside_matches - the text the byte scan found outside the parts is
// what GMime holds as prologue or epilogue (blanks around it and CRs
// aside: GMime may store line ends as LF), and not blank.
bool outside_matches(const Pick& p, const std::string& raw) {
    auto plain = [](std::string_view v) {
        std::string out(trim(v));
        std::erase(out, '\r');
        return out;
    };
    std::string mine = plain(std::string_view(raw).substr(p.range.begin, p.range.end - p.range.begin));
    const char* g = p.kind == Pick::Kind::Preamble ? g_mime_multipart_get_prologue(p.owner->mp)
                                                   : g_mime_multipart_get_epilogue(p.owner->mp);
    return !mine.empty() && g && plain(g) == mine;
}

// read_all - the spool's bytes in memory.
std::string read_all(const Spool& raw) {
    std::string s;
    s.reserve(static_cast<std::size_t>(raw.size()));
    std::vector<char> buf(64 * 1024);
    auto r = raw.reader();
    for (std::size_t n; (n = r->read(buf)) > 0;) s.append(buf.data(), n);
    return s;
}

} // namespace

// notify_message - the whole body replaced by text, with CRLF line ends.
RebuiltMessage notify_message(std::string_view text) {
    Encoded e = encode_text(text, "\r\n", {});
    RebuiltMessage m;
    m.body = std::move(e.body);
    if (m.body.size() < 2 || m.body.compare(m.body.size() - 2, 2, "\r\n") != 0) m.body += "\r\n";
    m.headers = content_edits(e);
    return m;
}

// clean_message - map, resolve, merge, splice (see the file header).
std::optional<RebuiltMessage> clean_message(const Spool& raw, const std::vector<Replacement>& replacements) {
    if (replacements.empty() || replacements.size() > kMaxReplacements) return std::nullopt;
    if (raw.size() == 0 || raw.size() > kMaxMessage) return std::nullopt;
    for (const auto& r : replacements)
        if (r.part_id.empty() || is_view_id(r.part_id)) return std::nullopt;

    const std::string s = read_all(raw);
    if (s.size() != raw.size()) return std::nullopt;
    LineCensus lc;
    lc.feed(s);
    Census c = lc.finish();
    if (c.delimiters + c.content_types > kMaxDelimiterLines || c.headers > kMaxHeaderLines) return std::nullopt;

    mime_init();
    GObjectPtr<GMimeStream> stream = open_stream(raw);
    GObjectPtr<GMimeParser> parser = adopt(g_mime_parser_new_with_stream(stream.get()));
    g_mime_parser_set_persist_stream(parser.get(), TRUE);
    g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
    GObjectPtr<GMimeMessage> msg = adopt(g_mime_parser_construct_message(parser.get(), nullptr));
    GMimeObject* top = msg ? g_mime_message_get_mime_part(msg.get()) : nullptr;
    if (!top) return std::nullopt;

    Mapper map(s);
    std::optional<std::size_t> body = map.header_end(0, s.size());
    if (!body) return std::nullopt;
    Node root;
    if (!map.node(top, {*body, s.size()}, *body, 0, root)) return std::nullopt;
    // New lines end as the top-level blank line does (CRLF when there is none).
    const bool lf_only = *body >= 1 && s[*body - 1] == '\n' && (*body < 2 || s[*body - 2] != '\r');
    const std::string eol = lf_only ? "\n" : "\r\n";

    std::vector<Pick> picks;
    Pick whole;
    whole.kind = Pick::Kind::Body;
    whole.range = root.entity;
    for (const auto& r : replacements) {
        std::optional<Pick> p = body_pick(root, split_id(r.part_id), 0, whole);
        if (!p) return std::nullopt;
        if ((p->kind == Pick::Kind::Preamble || p->kind == Pick::Kind::Epilogue) && !outside_matches(*p, s))
            return std::nullopt;
        p->texts = {r.text};
        picks.push_back(std::move(*p));
    }

    // Merge: the tree makes picks nested or apart; one inside another
    // (or the same twice) adds its text to the outer one.
    std::stable_sort(picks.begin(), picks.end(), [](const Pick& a, const Pick& b) {
        return a.range.begin != b.range.begin ? a.range.begin < b.range.begin : a.range.end > b.range.end;
    });
    std::vector<Pick> kept;
    for (auto& p : picks) {
        if (!kept.empty()) {
            Pick& k = kept.back();
            bool inside = k.range.begin <= p.range.begin && p.range.end <= k.range.end &&
                          (p.range.begin < k.range.end || p.range == k.range);
            if (inside) {
                add_text(k, p.texts);
                continue;
            }
            if (p.range.begin < k.range.end) return std::nullopt;
        }
        kept.push_back(std::move(p));
    }

    RebuiltMessage m;
    if (kept.size() == 1 && kept.front().kind == Pick::Kind::Body) {
        Encoded e = encode_text(joined(kept.front()), eol, {});
        m.body = std::move(e.body);
        if (m.body.size() < eol.size() || m.body.compare(m.body.size() - eol.size(), eol.size(), eol) != 0) m.body += eol;
        m.headers = content_edits(e);
        return m;
    }
    std::size_t at = *body;
    m.body.reserve(s.size() - at);
    for (const auto& p : kept) {
        m.body.append(s, at, p.range.begin - at);
        std::string text = joined(p);
        if (p.kind == Pick::Kind::Entity) {
            m.body += part_bytes(encode_text(text, eol, map.all_boundaries), eol);
        } else {
            m.body += notice(text, eol);
            if (p.range.end > p.range.begin && s[p.range.end - 1] == '\n') m.body += eol;
        }
        at = p.range.end;
    }
    m.body.append(s, at, std::string::npos);
    return m;
}

} // namespace icapm
