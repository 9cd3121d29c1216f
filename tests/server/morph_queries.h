#pragma once
// GET /morph of a test server, and what the morphing tests read from it.
#include <nlohmann/json.hpp>

#include "server_process.h"

namespace morphserve::testing {

// The /morph document, or null when the server does not answer 200.
inline nlohmann::json get_morph(const ServerProcess& server) {
  auto c = server.client(5s);
  auto r = c->Get("/morph");
  if (!r || r->status != 200) return nlohmann::json();
  return nlohmann::json::parse(r->body);
}

// Layers not at their full precision.
inline int quantized_layers(const nlohmann::json& morph) {
  int n = 0;
  for (const auto& layer : morph["layers"]) n += layer["precision"] != layer["full_precision"] ? 1 : 0;
  return n;
}

}  // namespace morphserve::testing
