#pragma once
// The small endpoints: GET /health, GET /v1/models, GET /metrics, GET /morph, POST /tokenize,
// POST /detokenize.
#include <httplib.h>

#include "server/prometheus.h"
#include "server/server_state.h"

namespace morphserve::server {

void handle_health(const ServerState& state, httplib::Response& res);
void handle_models(const ServerState& state, httplib::Response& res);
void handle_metrics(const ServerState& state, MetricsCompat compat, httplib::Response& res);
// GET /morph: the per-layer precision map, the KV segments and the controller's last decision.
void handle_morph(const ServerState& state, httplib::Response& res);
void handle_tokenize(const ServerState& state, const httplib::Request& req, httplib::Response& res);
void handle_detokenize(const ServerState& state, const httplib::Request& req, httplib::Response& res);

}  // namespace morphserve::server
