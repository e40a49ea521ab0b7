# PD_SANITIZE=ON builds everything with ASan and UBSan; any report aborts the
# test that triggered it, so leaks and undefined behaviour fail CI.
if(PD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
