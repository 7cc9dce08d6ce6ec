# moetrain_library(NAME <folder> [SOURCES ...] [DEPS <folders>...] [LIBS <targets>...])
#
# Each top-level folder is one library target `moetrain_<folder>`. A target compiles against an
# "include view": a folder under build/include_views/<folder>/ holding symlinks to its own folder
# and to the folders it may include (the README's Layout table), and nothing else. So
# `#include "train/x.h"` inside runtime/ fails to compile instead of quietly creating a cycle.
set(MOETRAIN_VIEW_ROOT ${CMAKE_BINARY_DIR}/include_views)

function(moetrain_make_view view_name)
  set(view ${MOETRAIN_VIEW_ROOT}/${view_name})
  file(MAKE_DIRECTORY ${view})
  foreach(folder ${ARGN})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${folder} ${view}/${folder} SYMBOLIC)
  endforeach()
  set(MOETRAIN_VIEW_DIR ${view} PARENT_SCOPE)
endfunction()

function(moetrain_library folder)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LIBS" ${ARGN})
  set(target moetrain_${folder})
  moetrain_make_view(${folder} ${folder} ${ARG_DEPS})
  if(ARG_SOURCES)
    add_library(${target} STATIC ${ARG_SOURCES})
    target_include_directories(${target} PRIVATE ${MOETRAIN_VIEW_DIR})
    set(scope PUBLIC)
  else()
    add_library(${target} INTERFACE)
    set(scope INTERFACE)
  endif()
  foreach(dep ${ARG_DEPS})
    target_link_libraries(${target} ${scope} moetrain_${dep})
  endforeach()
  if(ARG_LIBS)
    target_link_libraries(${target} ${scope} ${ARG_LIBS})
  endif()
endfunction()

# For the program and the tests: a view of every folder.
function(moetrain_use_all_folders target)
  moetrain_make_view(all runtime autograd nn moe parallel data eval train toolkit tools)
  target_include_directories(${target} PRIVATE ${MOETRAIN_VIEW_DIR})
endfunction()
