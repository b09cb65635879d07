# Every dependency is a Debian 12 package installed by scripts/install-deps.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(GTest REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(ZLIB REQUIRED)
pkg_check_modules(LIBNBD REQUIRED IMPORTED_TARGET libnbd)
pkg_check_modules(GNUTLS REQUIRED IMPORTED_TARGET gnutls)

# Standalone asio (libasio-dev) is header-only.
add_library(asio INTERFACE)
target_compile_definitions(asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED)
target_link_libraries(asio INTERFACE Threads::Threads)

# asio and the standard headers it drags in dominate compile time; every C++ target that uses
# asio precompiles them once.
function(hydrate_use_pch target)
  target_precompile_headers(${target} PRIVATE ${PROJECT_SOURCE_DIR}/cmake/pch.h)
endfunction()

# A library made of every .cpp under the calling folder, so parallel work on one component
# never edits a shared source list.
function(hydrate_component_library target)
  file(GLOB_RECURSE _srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  add_library(${target} STATIC ${_srcs} ${PROJECT_SOURCE_DIR}/cmake/empty.cpp)
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
  hydrate_use_pch(${target})
endfunction()
