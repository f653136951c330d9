/* The smallest program built on liblutra: load a model, generate, print. */
#include <stdio.h>

#include "lutra.h"

static int print_piece(const char* text, size_t len, void* user) {
  (void)user;
  fwrite(text, 1, len, stdout);
  fflush(stdout);
  return 1; /* keep going */
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s MODEL [PROMPT]\n", argv[0]);
    return 2;
  }
  char err[256];
  lutra_model* model = lutra_model_load(argv[1], err, sizeof err);
  if (!model) {
    fprintf(stderr, "example: %s\n", err);
    return 1;
  }
  lutra_params params = lutra_default_params();
  params.n_predict = 32;
  params.seed = 42;
  int rc = lutra_generate(model, &params, argc > 2 ? argv[2] : "Once upon a time", print_piece, NULL,
                          err, sizeof err);
  printf("\n");
  if (rc != 0) fprintf(stderr, "example: %s\n", err);
  lutra_model_free(model);
  return rc == 0 ? 0 : 1;
}
