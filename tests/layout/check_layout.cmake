# check_layout: the include rule between the core's folders, checked on the source tree.
#   cmake -DROOT=<source dir> -P tests/layout/check_layout.cmake
# Run by the build (target shoal_layout_check, before any core library compiles) and by ctest
# (layout_test). Prints one line per offence and fails when
#   - a file under src/ or include/shoal/ is not inside one of the folders below,
#   - a core file includes a header of a folder its own folder may not use,
#   - an include names a shoal header without its folder, or one that does not exist,
#   - a core file includes the actor layer (caf/, actors/).
# The order: a folder may include itself and every folder before it. It is the same order as the
# target_link_libraries of CMakeLists.txt; change both together.
cmake_minimum_required(VERSION 3.18)

set(order base store cluster serving wire ops)

if(NOT DEFINED ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source dir> -P check_layout.cmake")
endif()
string(JOIN "|" folder_alt ${order})
string(JOIN " " order_text ${order})

set(problems "")
file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE "${ROOT}"
     "${ROOT}/src/*" "${ROOT}/include/shoal/*")
list(SORT files)
foreach(f IN LISTS files)
  if(NOT f MATCHES "^(src|include/shoal)/([^/]+)/")
    list(APPEND problems "${f}: not in a folder (${order_text})")
    continue()
  endif()
  set(folder "${CMAKE_MATCH_2}")
  list(FIND order "${folder}" rank)
  if(rank EQUAL -1)
    list(APPEND problems "${f}: unknown folder ${folder} (add it to check_layout.cmake's order)")
    continue()
  endif()
  if(NOT f MATCHES "\\.(cpp|hpp|h|cc)$")
    continue()  # README.md and other notes
  endif()
  math(EXPR allowed_last "${rank}")
  set(allowed "")
  foreach(i RANGE 0 ${allowed_last})
    list(GET order ${i} name)
    list(APPEND allowed "${name}")
  endforeach()
  string(JOIN " " allowed_text ${allowed})

  file(STRINGS "${ROOT}/${f}" includes REGEX "^[ \t]*#[ \t]*include")
  foreach(line IN LISTS includes)
    string(STRIP "${line}" line)
    set(target "")
    if(line MATCHES "include[ \t]*[<\"](caf/|actors/)")
      list(APPEND problems "${f}: ${line}: the core does not include the actor layer")
    elseif(line MATCHES "include[ \t]*[<\"]shoal/([^\">]*)[\">]")
      set(path "${CMAKE_MATCH_1}")
      if(NOT path MATCHES "^([^/]+)/")
        list(APPEND problems "${f}: ${line}: names no folder")
        continue()
      endif()
      set(target "${CMAKE_MATCH_1}")
      if(NOT EXISTS "${ROOT}/include/shoal/${path}")
        list(APPEND problems "${f}: ${line}: include/shoal/${path} does not exist")
      endif()
    elseif(line MATCHES "include[ \t]*\"(${folder_alt})/([^\"]*)\"")
      # a private header: src/<folder>/x.hpp, reached through -I src
      set(target "${CMAKE_MATCH_1}")
      if(NOT EXISTS "${ROOT}/src/${CMAKE_MATCH_1}/${CMAKE_MATCH_2}")
        list(APPEND problems "${f}: ${line}: src/${CMAKE_MATCH_1}/${CMAKE_MATCH_2} does not exist")
      endif()
    endif()
    if(NOT target STREQUAL "")
      list(FIND order "${target}" target_rank)
      if(target_rank EQUAL -1)
        list(APPEND problems "${f}: ${line}: unknown folder ${target}")
      elseif(target_rank GREATER rank)
        list(APPEND problems
             "${f}: ${line}: ${folder} may not include ${target} (allowed: ${allowed_text})")
      endif()
    endif()
  endforeach()
endforeach()

list(LENGTH files checked)
list(LENGTH problems count)
if(count GREATER 0)
  foreach(p IN LISTS problems)
    message("${p}")
  endforeach()
  message(FATAL_ERROR "layout: ${count} problem(s) in ${checked} files; order: ${order_text}")
endif()
message(STATUS "layout: ${checked} files keep the folder order (${order_text})")
