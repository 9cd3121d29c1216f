#pragma once
// POST /v1/completions and POST /v1/chat/completions: parse and check the body, turn it into
// prompt tokens, submit to the engine and answer as one JSON body or as an SSE stream.
#include <httplib.h>

#include "server/openai_response.h"
#include "server/server_state.h"

namespace morphserve::server {

// Handles one request; every failure becomes an OpenAI error reply, nothing escapes.
void handle_generation(ServerState& state, ApiKind kind, const httplib::Request& req, httplib::Response& res);

}  // namespace morphserve::server
