// NAME
//   context.hpp - per-connection and per-message milter state
// SUMMARY
//   Connection state lives as long as the SMTP session; message state is
//   created at MAIL FROM and destroyed at end of message and on abort, so
//   several messages on one connection never share anything.
#pragma once

#include "icap-milter/milter/runtime.hpp"
#include "icap-milter/mime/spool.hpp"
#include "icap-milter/policy/bypass.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace icapm {

// MessageContext - one message being received.
struct MessageContext {
    explicit MessageContext(const Config& config, std::shared_ptr<MemoryBudget> budget = nullptr);

    unsigned long job = 0;         // Job-N
    std::string queue_id;          // MTA queue id ("NOQUEUE" until known)
    std::string sender;            // sanitised envelope sender
    unsigned recipients = 0;
    std::vector<std::string> rcpts; // RCPT TO addresses as given (the first kMaxRcpts)
    std::optional<std::string> subject; // the first Subject header's value (bounded)
    std::map<std::string, int> header_counts; // Content-* and MIME-Version fields (lower case) -> count
    std::string release_id;        // X-Icap-Milter-Released: a quarantine copy re-injected by release
    // Headers + body as received. Shared: the whole-message scan item
    // (part 0) reads it, and may outlive this context when a scan times out.
    std::shared_ptr<Spool> spool;
    bool spool_failed = false;     // append failed: OnFail at end of message
    std::string spool_error;
    bool in_body = false;          // the blank line after the headers is written
    std::map<std::string, int> strip; // our header names (lower case) -> copies seen
    std::vector<std::string> tokens;  // values of the token headers (first kMaxTokenHeaders, each bounded)
    std::chrono::steady_clock::time_point started;
    // Filters and bypass lists (policy/bypass.hpp): received counts the
    // bytes the MTA sent; too_big: past MaxMessageSize (spooling stopped).
    // bypass: decided once at the first header (every recipient is known
    // by then); a skipped message is not spooled at all.
    std::uint64_t received = 0;
    bool too_big = false;
    std::string auth_authen;       // {auth_authen} at MAIL FROM (bounded), "" = none
    bool bypass_checked = false;
    std::optional<BypassMatch> bypass;
};

// ConnectionContext - one SMTP session.
struct ConnectionContext {
    std::shared_ptr<const Runtime> runtime;
    std::string client;            // sanitised "name [addr]"
    bool leading_space = false;    // MTA keeps the space after "Name:" in values
    std::optional<IpAddress> client_ip; // SkipClientNetworks; none for unix or unknown clients
    std::unique_ptr<MessageContext> message;
};

// next_job_id - process-wide message counter for Job-N.
unsigned long next_job_id();

} // namespace icapm
