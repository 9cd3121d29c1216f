#pragma once
// GET /dashboard: one self-contained HTML page (dashboard.html, compiled into the binary) that
// polls /morph and /metrics and draws the server's state; see README.md.
#include <string_view>

namespace morphserve::server {

// The page, byte for byte as dashboard.html holds it.
std::string_view dashboard_html();

// The Content-Security-Policy it is served with: it may only talk to the server that served it and
// load nothing from anywhere (its script and style are inline).
inline constexpr std::string_view kDashboardContentSecurityPolicy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

}  // namespace morphserve::server
