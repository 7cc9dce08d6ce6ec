// The world of a process started without a launcher: one rank, every collective the identity
// (a reduction over one rank, a gather of one part, an exchange with oneself). Used by
// parallel::world() when no MPI launcher started this process, so single-process runs never
// initialise MPI (and work where no MPI runtime is installed, e.g. a lent GPU's image).
#pragma once

#include <memory>

#include "parallel/communicator.h"

namespace mt::parallel {

std::unique_ptr<Communicator> make_self_communicator();

// Whether an MPI launcher (mpirun / mpiexec, Slurm's srun with PMI or PMIx) started this process.
bool launched_by_mpi();

}  // namespace mt::parallel
