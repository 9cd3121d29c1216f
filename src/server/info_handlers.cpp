#include "server/info_handlers.h"

#include <chrono>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "engine/engine.h"
#include "model/llama_weights.h"
#include "morph/morph_status.h"
#include "server/http_reply.h"
#include "server/json_fields.h"
#include "server/openai_response.h"
#include "server/prometheus.h"

namespace morphserve::server {

using nlohmann::json;

namespace {
// Runs a handler body, turning every failure into an OpenAI error reply.
template <typename F>
void guarded(httplib::Response& res, F&& body) {
  try {
    body();
  } catch (const ApiError& e) {
    send_error(res, e);
  } catch (const InvalidArgument& e) {
    send_error(res, ApiError(400, "invalid_request_error", e.what()));
  } catch (const std::exception& e) {
    send_error(res, ApiError(500, "server_error", fmt::format("internal error: {}", e.what())));
  }
}
}  // namespace

void handle_health(const ServerState& state, httplib::Response& res) {
  switch (state.phase()) {
    case ServerPhase::Ready: send_json(res, 200, {{"status", "ok"}}); return;
    case ServerPhase::Loading: send_json(res, 503, {{"status", "loading"}}); return;
    case ServerPhase::ShuttingDown: send_json(res, 503, {{"status", "shutting_down"}}); return;
  }
}

void handle_models(const ServerState& state, httplib::Response& res) {
  guarded(res, [&] {
    const ServingModel& m = state.require_ready();
    json models = json::array();
    for (const std::string& name : state.listed_model_names()) {
      models.push_back({{"id", name},
                        {"object", "model"},
                        {"created", unix_time_now()},
                        {"owned_by", "morphserve"},
                        {"root", m.model->source},
                        {"parent", nullptr},
                        {"max_model_len", m.max_model_len},
                        // Not in vLLM's answer: lets clients (morphserve bench) draw prompt ids inside it.
                        {"vocab_size", m.model->tokenizer.vocab_size()}});
    }
    send_json(res, 200, {{"object", "list"}, {"data", std::move(models)}});
  });
}

void handle_metrics(const ServerState& state, MetricsCompat compat, httplib::Response& res) {
  guarded(res, [&] {
    const ServingModel* m = state.model();
    const EngineSnapshot snapshot = m ? m->engine->snapshot() : EngineSnapshot{};
    res.status = 200;
    std::optional<MorphSummary> morph;
    if (m && m->morph) morph = m->morph->summary();
    PrometheusOptions options;
    options.compat = compat;
    options.now_unix_seconds =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    res.set_content(render_prometheus(state.served_model_name(), snapshot, m ? &m->engine->metrics() : nullptr,
                                      morph ? &*morph : nullptr, options),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
}

void handle_morph(const ServerState& state, httplib::Response& res) {
  guarded(res, [&] {
    const ServingModel& m = state.require_ready();
    json status = m.morph ? m.morph->status() : json{{"mode", "off"}};
    const EngineSnapshot snapshot = m.engine->snapshot();
    status["engine"] = {{"kv_blocks_total", snapshot.kv_blocks_total},
                        {"kv_blocks_used", snapshot.kv_blocks_used},
                        {"num_running", snapshot.num_running},
                        {"num_waiting", snapshot.num_waiting},
                        {"iterations", snapshot.iterations}};
    send_json(res, 200, status);
  });
}

void handle_tokenize(const ServerState& state, const httplib::Request& req, httplib::Response& res) {
  guarded(res, [&] {
    const ServingModel& m = state.require_ready();
    const json body = parse_json_body(req.body);
    if (auto model = get_string(body, "model"); model && !state.serves_model(*model)) {
      throw_invalid(fmt::format("The model `{}` does not exist", *model), "model", "model_not_found");
    }
    const std::optional<std::string> prompt = get_string(body, "prompt");
    if (!prompt) throw_invalid("'prompt' is required", "prompt");
    const bool add_special = get_bool(body, "add_special_tokens").value_or(true);
    const std::vector<int32_t> tokens = m.model->tokenizer.encode(*prompt, add_special, true);
    send_json(res, 200, {{"tokens", tokens}, {"count", tokens.size()}, {"max_model_len", m.max_model_len}});
  });
}

void handle_detokenize(const ServerState& state, const httplib::Request& req, httplib::Response& res) {
  guarded(res, [&] {
    const ServingModel& m = state.require_ready();
    const json body = parse_json_body(req.body);
    const json* tokens = find_field(body, "tokens");
    if (!tokens) throw_invalid("'tokens' is required", "tokens");
    if (!tokens->is_array()) throw_invalid(fmt::format("'tokens' must be an array, got {}", json_kind(*tokens)), "tokens");
    std::vector<int32_t> ids;
    const int64_t vocab = m.model->tokenizer.vocab_size();
    for (const json& id : *tokens) ids.push_back(static_cast<int32_t>(as_int(id, "tokens", 0, vocab - 1)));
    send_json(res, 200, {{"prompt", m.model->tokenizer.decode(ids)}});
  });
}

}  // namespace morphserve::server
