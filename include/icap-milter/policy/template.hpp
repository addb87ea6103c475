// NAME
//   template.hpp - the administrator's texts: reply, subject tag, notices
// SUMMARY
//   A template is text with fields in braces: {viruses}, {files},
//   {sender}, {recipients}, {queue_id}, {job_id}, {date}, {host},
//   {status}, {reason}, {subject}; {nl} is a line break in a notice (a
//   space elsewhere). "{{" and "}}" stand for a brace.
//   Values come from the message and the scan, so they are hostile:
//   render() never lets them add a line or a control byte, and the
//   callers cut the result to what its place allows (header_line(),
//   reply_line()).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// TemplateFields - the values a template may name.
struct TemplateFields {
    std::vector<std::string> viruses;    // de-duplicated names
    std::vector<std::string> files;      // names of the infected parts ("" skipped)
    std::string sender;
    std::vector<std::string> recipients;
    std::string queue_id;
    std::string job_id;                  // "Job-17"
    std::string date;                    // RFC 5322 date of the scan
    std::string host;                    // ReportHostname
    std::string status;                  // Clean | Infected | Unscanned | Ambiguous
    std::string reason;                  // the decision's reason
    std::string subject;                 // the message's Subject (decoded as far as safe)
};

// render - expand the fields; multi_line keeps the template's own line
// breaks (a notice body), otherwise every line break becomes a space.
// Field values never bring a line break or control byte in either way.
std::string render(std::string_view tmpl, const TemplateFields& f, bool multi_line = false);

// template_error - "" when every {field} is known and braces balance,
// else why not (for config validation).
std::string template_error(std::string_view tmpl);

// header_line - one header value: no control bytes, blanks collapsed, at
// most max bytes (UTF-8 sequences kept whole).
std::string header_line(std::string_view text, std::size_t max = 200);

// reply_line - SMTP reply text for smfi_setreply: printable ASCII, no
// '%' (libmilter formats it), at most max bytes.
std::string reply_line(std::string_view text, std::size_t max = 400);

} // namespace icapm
