# HYDRATE_SANITIZE=address,undefined or thread: instruments every target in this tree.
if(HYDRATE_SANITIZE)
  set(_san_flags -fsanitize=${HYDRATE_SANITIZE} -fno-omit-frame-pointer)
  if(HYDRATE_SANITIZE MATCHES "undefined")
    list(APPEND _san_flags -fno-sanitize-recover=undefined)
  endif()
  if(HYDRATE_SANITIZE MATCHES "thread")
    # ThreadSanitizer does not model atomic_thread_fence (GCC 12 refuses it under -Werror with
    # -Wtsan). asio's fenced blocks order handler state that its scheduler already publishes
    # under a mutex, so the TSan build compiles them out rather than silencing the warning.
    add_compile_definitions(ASIO_DISABLE_FENCED_BLOCK)
  endif()
  add_compile_options(${_san_flags})
  add_link_options(-fsanitize=${HYDRATE_SANITIZE})
endif()
