// NAME
//   callbacks.hpp - register icap-milter's callbacks with libmilter
#pragma once

namespace icapm {

// milter_register - smfi_register with every callback and flag we use;
// false (and a logged reason) when libmilter refuses.
bool milter_register();

// active_connections - SMTP sessions currently open (for draining at stop).
unsigned long active_connections() noexcept;

} // namespace icapm
