#include "cli/app.h"

int main(int argc, char** argv) { return morphserve::cli::run_app(argc, argv); }
