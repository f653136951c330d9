/* lutra's C API: load a model file, generate text. Link liblutra.a (and libstdc++). */
#ifndef LUTRA_H
#define LUTRA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lutra_model lutra_model;

typedef struct lutra_params {
  int n_ctx;          /* context tokens; 0: the model's, at most 4096 */
  int n_threads;      /* 0: one per physical core */
  int n_predict;      /* tokens to generate; < 0: until end of text */
  float temperature;  /* 0: greedy */
  int top_k;
  float top_p;
  float min_p;
  uint64_t seed;
} lutra_params;

/* Callback for generated text (complete UTF-8 characters). Return 0 to stop. */
typedef int (*lutra_text_callback)(const char* text, size_t len, void* user);

const char* lutra_version(void);
lutra_params lutra_default_params(void);
/* NULL on failure, with a one-line reason in err. */
lutra_model* lutra_model_load(const char* path, char* err, size_t err_len);
void lutra_model_free(lutra_model* model);
/* 0 on success; else non-zero with a one-line reason in err. */
int lutra_generate(lutra_model* model, const lutra_params* params, const char* prompt,
                   lutra_text_callback on_text, void* user, char* err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
