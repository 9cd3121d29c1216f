// Morphing from a K-quant base (a Q4_K_M file: Q4_K matrices with some Q6_K ones). The model's
// own precision is the top rung; Q8_0 frees nothing there and is skipped; Q4_0 is as small as Q4_K
// (4.5 bits per weight), so the Q4_0 rung replaces only the Q6_K matrices and keeps the Q4_K ones.
#include <gtest/gtest.h>

#include "engine/layer_linears.h"
#include "engine/model_loader.h"
#include "kernels/thread_pool.h"
#include "model/gguf_test_support.h"
#include "model/llama_gguf_writer.h"
#include "morph/replica_layout.h"
#include "morph/replica_store.h"
#include "quant/quantize.h"
#include "test_backend.h"

namespace morphserve {
namespace {

// dummy llama3-tiny quantized to Q4_K, with ffn_down and attn_v in Q6_K as llama.cpp's Q4_K_M does.
LlamaModel q4_k_m_like(ThreadPool& pool) {
  LlamaModel model = load_model("dummy:llama3-tiny:q4_K", "", pool, test_backend());
  for (LayerWeights& layer : model.weights.layers) {
    for (WeightMatrix* m : {&layer.w_down, &layer.wv}) {
      const MatrixView source = m->view();
      *m = WeightMatrix(test_backend(), DType::Q6_K, m->rows, m->cols,
                        [&](std::byte* host) { convert_matrix_into(source, DType::Q6_K, host, &pool); });
    }
  }
  return model;
}

TEST(KQuantLadder, Q4KMLayersShrinkOnlyTheirQ6KMatrices) {
  ThreadPool pool(2);
  const LlamaModel model = q4_k_m_like(pool);
  const LayerLinears views = LayerLinears::of(model.weights.layers[0]);
  EXPECT_EQ(layer_ladder(views), (std::vector<DType>{DType::Q4_K, DType::Q4_0}));
  EXPECT_EQ(replica_type(views.m[0], DType::Q4_0), DType::Q4_K);  // attn_q stays: Q4_0 is no smaller
  EXPECT_EQ(replica_type(model.weights.layers[0].w_down.view(), DType::Q4_0), DType::Q4_0);
  EXPECT_EQ(replica_type(model.weights.layers[0].w_down.view(), DType::Q8_0), DType::Q6_K);
  EXPECT_LT(rung_bytes(views, DType::Q4_0), views.bytes());

  const auto store = ReplicaStore::in_memory(model, pool);
  EXPECT_EQ(store->ladder(1), (std::vector<DType>{DType::Q4_K, DType::Q4_0}));
}

TEST(KQuantLadder, ReplicaFileOfAK_QuantGgufHoldsOnlyWhatShrinks) {
  ThreadPool pool(2);
  ::morphserve::testing::TempDir dir;
  const std::string path = dir.file("q4km.gguf");
  write_llama_gguf(q4_k_m_like(pool), path);
  const auto store = ReplicaStore::open(path, dir.file("q4km.replicas.gguf"), /*create_if_missing=*/true, pool);
  EXPECT_EQ(store->ladder(0), (std::vector<DType>{DType::Q4_K, DType::Q4_0}));
  const LayerLinears& w4 = store->replica(0, DType::Q4_0);
  EXPECT_EQ(w4.m[0].type, DType::Q4_K);  // attn_q read from the model file
  EXPECT_EQ(w4.m[6].type, DType::Q4_0);  // ffn_down from the replica file
}

}  // namespace
}  // namespace morphserve
