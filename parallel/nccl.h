// The NCCL communicator (built when the CUDA toolkit and NCCL are found: MOETRAIN_HAVE_NCCL).
#pragma once

#include <memory>

#include "parallel/communicator.h"

namespace mt::parallel {

// An NCCL communicator over the ranks of `bootstrap` (its unique id broadcast by rank 0 over
// `bootstrap`, normally the MPI world), on CUDA device `cuda_device`.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int cuda_device);

}  // namespace mt::parallel
