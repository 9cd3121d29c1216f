#include "server/server_state.h"

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "server/api_error.h"

namespace morphserve::server {

ServedModelNames default_served_model_names(const std::string& source) {
  if (source.starts_with("dummy:")) return {{source}, {}};
  std::filesystem::path path(source);
  if (!path.has_filename()) path = path.parent_path();  // "checkpoints/qwen/" names the folder
  std::string name = path.has_extension() && path.extension() == ".gguf" ? path.stem().string() : path.filename().string();
  if (name.empty() || name == source) return {{source}, {}};
  return {{name}, {source}};
}

ServerState::ServerState(ServedModelNames names) : names_(std::move(names)) {
  if (names_.listed.empty()) fail<InvalidArgument>("a server needs at least one served model name");
  for (const auto* list : {&names_.listed, &names_.aliases}) {
    for (const std::string& name : *list) {
      if (name.empty()) fail<InvalidArgument>("a served model name must not be empty");
    }
  }
}

bool ServerState::serves_model(const std::string& model) const {
  auto has = [&](const std::vector<std::string>& names) {
    return std::find(names.begin(), names.end(), model) != names.end();
  };
  return has(names_.listed) || has(names_.aliases);
}

void ServerState::set_ready(ServingModel model) {
  if (has_model_.load(std::memory_order_acquire)) return;
  model_ = std::move(model);
  has_model_.store(true, std::memory_order_release);
  ServerPhase expected = ServerPhase::Loading;
  phase_.compare_exchange_strong(expected, ServerPhase::Ready, std::memory_order_acq_rel);
}

const ServingModel& ServerState::require_ready() const {
  switch (phase()) {
    case ServerPhase::Ready: return model_;
    case ServerPhase::Loading:
      throw ApiError(503, "service_unavailable_error", "the model is still loading; retry shortly", std::nullopt,
                     "model_loading");
    case ServerPhase::ShuttingDown: break;
  }
  throw ApiError(503, "service_unavailable_error", "the server is shutting down", std::nullopt, "shutting_down");
}

ServerState::InFlight::InFlight(ServerState& state) : state_(state) {
  std::lock_guard lock(state_.mutex_);
  ++state_.in_flight_;
}

ServerState::InFlight::~InFlight() {
  {
    std::lock_guard lock(state_.mutex_);
    --state_.in_flight_;
  }
  state_.idle_.notify_all();
}

int64_t ServerState::in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_;
}

bool ServerState::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return idle_.wait_for(lock, timeout, [&] { return in_flight_ == 0; });
}

}  // namespace morphserve::server
