// --served-model-name as vLLM has it: which names a server lists and which it accepts.
#include <gtest/gtest.h>

#include "core/error.h"
#include "server/server_state.h"

namespace morphserve::server {
namespace {

TEST(ServedModelNames, DefaultIsTheFileStemWithThePathAccepted) {
  const ServedModelNames n = default_served_model_names("../shared/data/models/stories260K.gguf");
  EXPECT_EQ(n.listed, std::vector<std::string>{"stories260K"});
  EXPECT_EQ(n.aliases, std::vector<std::string>{"../shared/data/models/stories260K.gguf"});
  const ServerState state(n);
  EXPECT_EQ(state.served_model_name(), "stories260K");
  EXPECT_TRUE(state.serves_model("stories260K"));
  EXPECT_TRUE(state.serves_model("../shared/data/models/stories260K.gguf"));
  EXPECT_FALSE(state.serves_model("stories260K.gguf"));
  EXPECT_FALSE(state.serves_model("gpt-4"));
}

TEST(ServedModelNames, CheckpointFoldersAndDummiesKeepTheirNames) {
  EXPECT_EQ(default_served_model_names("/models/Qwen2.5-0.5B/").listed, std::vector<std::string>{"Qwen2.5-0.5B"});
  EXPECT_EQ(default_served_model_names("/models/Qwen2.5-0.5B").listed, std::vector<std::string>{"Qwen2.5-0.5B"});
  const ServedModelNames dummy = default_served_model_names("dummy:tiny");
  EXPECT_EQ(dummy.listed, std::vector<std::string>{"dummy:tiny"});
  EXPECT_TRUE(dummy.aliases.empty());
  // A bare file name in the working folder: stem listed, the name itself still accepted.
  const ServedModelNames bare = default_served_model_names("model.gguf");
  EXPECT_EQ(bare.listed, std::vector<std::string>{"model"});
  EXPECT_EQ(bare.aliases, std::vector<std::string>{"model.gguf"});
}

TEST(ServedModelNames, GivenNamesAreAllListedAndTheFirstAnswers) {
  const ServerState state(ServedModelNames{{"llama-3", "default"}, {}});
  EXPECT_EQ(state.served_model_name(), "llama-3");
  EXPECT_EQ(state.listed_model_names().size(), 2u);
  EXPECT_TRUE(state.serves_model("default"));
  EXPECT_FALSE(state.serves_model("dummy:tiny"));
}

TEST(ServedModelNames, EmptyNamesAreRefused) {
  EXPECT_THROW(ServerState(ServedModelNames{{}, {}}), InvalidArgument);
  EXPECT_THROW(ServerState(ServedModelNames{{""}, {}}), InvalidArgument);
}

}  // namespace
}  // namespace morphserve::server
