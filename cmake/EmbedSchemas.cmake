# Turns schemas/<name>.avsc into a C array pd_schema_<name>[] (NUL-ended), and
# each released older schema schemas/history/<name>.v<N>.avsc into
# pd_schema_history_<name>_v<N>[] (schemas/history.c lists them), in
# ${PD_SCHEMAS_C}. Editing or adding a schema re-runs CMake.
set(PD_SCHEMA_NAMES release_deployed deploy_planned action_started
                    action_finished registry_published skip_requested
                    reset_requested cancel_requested cancel_answered
                    pause_requested resume_requested
                    action_progress)
set(PD_SCHEMAS_C ${CMAKE_CURRENT_BINARY_DIR}/schemas_gen.c)
set(_out "/* Generated from the schemas/ folder by cmake/EmbedSchemas.cmake. */\n")
foreach(_n IN LISTS PD_SCHEMA_NAMES)
  set(_f ${CMAKE_CURRENT_SOURCE_DIR}/schemas/${_n}.avsc)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_f})
  file(READ ${_f} _hex HEX)
  string(REGEX REPLACE "(..)" "0x\\1," _bytes "${_hex}")
  string(APPEND _out "const char pd_schema_${_n}[] = {${_bytes}0x00};\n")
endforeach()
file(GLOB _history CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/schemas/history/*.avsc)
list(SORT _history)
foreach(_f IN LISTS _history)
  get_filename_component(_n ${_f} NAME)
  string(REGEX REPLACE "\\.avsc$" "" _n "${_n}")
  string(REPLACE "." "_" _n "${_n}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_f})
  file(READ ${_f} _hex HEX)
  string(REGEX REPLACE "(..)" "0x\\1," _bytes "${_hex}")
  string(APPEND _out "const char pd_schema_history_${_n}[] = {${_bytes}0x00};\n")
endforeach()
file(WRITE ${PD_SCHEMAS_C}.tmp "${_out}")
configure_file(${PD_SCHEMAS_C}.tmp ${PD_SCHEMAS_C} COPYONLY)
