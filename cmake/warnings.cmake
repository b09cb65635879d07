# -Werror everywhere in our own code; third-party headers come in as SYSTEM includes.
add_compile_options(-Wall -Wextra -Werror -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 warns inside asio's coroutine frames for valid code.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-Wno-mismatched-new-delete>)
  # GCC 12 reports impossible out-of-bounds and overflowing std::string copies at -O2 (GCC bugs 105329,
  # 105651); real bounds errors are ASan's job in the sanitizer build.
  add_compile_options($<$<COMPILE_LANGUAGE:CXX>:-Wno-array-bounds>
                      $<$<COMPILE_LANGUAGE:CXX>:-Wno-stringop-overflow>)
endif()
