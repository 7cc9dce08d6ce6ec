// A communicator that sends each tensor by the library for its memory: host tensors over the
// host communicator (MPI: token counts, losses, flags), GPU tensors over the device communicator
// (NCCL: gradients, activations of expert and tensor parallelism). Both span the same ranks in
// the same order; split() splits both, so process groups made from it route the same way.
#pragma once

#include <memory>

#include "parallel/communicator.h"

namespace mt::parallel {

// `host` may be shared (the MPI world is owned by world()).
std::unique_ptr<Communicator> make_device_routed_communicator(std::shared_ptr<Communicator> host,
                                                              std::unique_ptr<Communicator> device);

}  // namespace mt::parallel
