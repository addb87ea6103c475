// NAME
//   alerts.hpp - alert mail to the administrator, sent by a thread of its own
// SUMMARY
//   alerts_start() starts the alert thread and queues the start alert;
//   alerts_stop() queues the stop alert, sends what is left within a
//   bounded time and joins the thread. Message threads only queue an
//   event (alert_infection): the queue is bounded and a full queue drops
//   the event (Alerts.Dropped), so sending never blocks a message.
//   The thread itself watches the scanner pool (Scanner::servers(), about
//   once a second) and the scan queue (Scanner::queued()), applies the
//   rate limits of alert_policy.hpp and sends through AlertSmtpServer
//   (primary, then backups) with the client of net/smtp_client.hpp. It
//   reads the running configuration on every round, so a reload changes
//   recipients, servers and limits at once. With AlertRecipients empty
//   nothing is sent.
// DIAGNOSTICS
//   A sent alert is logged at info ("alert sent: kind=... server=...")
//   and counted (Alerts.Sent); one that no server took is logged at
//   warning with every server's reason and counted (Alerts.Failed).
#pragma once

#include "icap-milter/stats/alert_policy.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace icapm {

// InfectionAlert - what an infection alert tells (never the content).
struct InfectionAlert {
    std::string queue_id;
    std::string sender;
    std::vector<std::string> recipients; // as known (may be the first N only)
    std::size_t recipient_count = 0;     // all of them
    std::vector<std::string> viruses;    // names the scanners gave
    std::vector<std::string> files;      // names of the infected parts
    std::string action;                  // the action taken
    std::string client;                  // "name [addr]"
};

// alerts_start - start the thread; queue the start alert naming version.
void alerts_start(const std::string& version);

// alerts_stop - queue the stop alert (with why), send what is left
// within budget, and join the thread. Safe to call when not started.
void alerts_stop(const std::string& why, std::chrono::milliseconds budget);

// post_alert - queue an event for the thread, never waiting; a full
// queue (or no thread) drops it.
void post_alert(AlertEvent event);

// alert_infection - queue an infection alert (cheap: builds text only).
void alert_infection(const InfectionAlert& a);

// infection_event - the event alert_infection queues.
AlertEvent infection_event(const InfectionAlert& a, std::int64_t unix_now);

} // namespace icapm
