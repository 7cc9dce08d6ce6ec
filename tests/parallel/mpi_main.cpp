// Catch2 main for tests run under mpirun: MPI is set up by parallel::world() on first use.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "parallel/communicator.h"

int main(int argc, char* argv[]) {
  mt::parallel::world();  // MPI_Init before any test
  return Catch::Session().run(argc, argv);
}
