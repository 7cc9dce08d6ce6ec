# CBLAS: we link the library file by full path so that the OpenMP build of OpenBLAS is used
# (inside our own OpenMP regions it then runs single-threaded instead of oversubscribing the
# cores). CMake puts its folder in the binaries' RUNPATH, so Debian's libopenblas.so.0
# alternative does not silently swap in the pthread build at run time.
find_library(MOETRAIN_BLAS_LIBRARY NAMES openblas blas PATHS ${MOETRAIN_BLAS_DIR} NO_DEFAULT_PATH)
if(NOT MOETRAIN_BLAS_LIBRARY)
  find_library(MOETRAIN_BLAS_LIBRARY NAMES openblas)
endif()
if(NOT MOETRAIN_BLAS_LIBRARY)
  message(FATAL_ERROR "No CBLAS library found. Run tools/bootstrap.sh (installs libopenblas-openmp-dev) "
                      "or set -DMOETRAIN_BLAS_DIR=<folder with libopenblas.so>.")
endif()
get_filename_component(_blas_libdir ${MOETRAIN_BLAS_LIBRARY} DIRECTORY)
get_filename_component(_blas_flavour ${_blas_libdir} NAME)  # e.g. openblas-openmp
find_path(MOETRAIN_CBLAS_INCLUDE cblas.h
          PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/${_blas_flavour} NO_DEFAULT_PATH)
find_path(MOETRAIN_CBLAS_INCLUDE cblas.h PATHS /usr/include/openblas /usr/include)
if(NOT MOETRAIN_CBLAS_INCLUDE)
  message(FATAL_ERROR "cblas.h not found. Run tools/bootstrap.sh.")
endif()
add_library(moetrain_blas INTERFACE)
target_link_libraries(moetrain_blas INTERFACE ${MOETRAIN_BLAS_LIBRARY})
target_include_directories(moetrain_blas SYSTEM INTERFACE ${MOETRAIN_CBLAS_INCLUDE})
message(STATUS "moetrain: CBLAS = ${MOETRAIN_BLAS_LIBRARY} (cblas.h from ${MOETRAIN_CBLAS_INCLUDE})")
