# HYDRATE_SANITIZE=address,undefined or thread: instruments every target in this tree.
if(HYDRATE_SANITIZE)
  set(_san_flags -fsanitize=${HYDRATE_SANITIZE} -fno-omit-frame-pointer)
  if(HYDRATE_SANITIZE MATCHES "undefined")
    list(APPEND _san_flags -fno-sanitize-recover=undefined)
  endif()
  add_compile_options(${_san_flags})
  add_link_options(-fsanitize=${HYDRATE_SANITIZE})
endif()
