# Install layout (GNUInstallDirs) and the .deb (CPack), in one place.
#
# Programs: postdeploy in bin, postdeploy-reactor in sbin (a daemon, its man
# page in section 8). For plugin authors: postdeploy/plugin.h and
# postdeploy-plugin.pc (arch-independent, share/pkgconfig: the header is all
# there is). Man pages postdeploy(1), postdeploy-reactor(8) and
# postdeploy.ini(5), the last generated at build time from the parser's key
# table. A systemd unit and a sysusers.d file for its account.
#
# The unit names the reactor by its full path, so configure a package build
# with the prefix it installs to: cmake -DCMAKE_INSTALL_PREFIX=/usr; cpack.
include(GNUInstallDirs)

install(TARGETS postdeploy RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS postdeploy-reactor RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
install(DIRECTORY schemas/ DESTINATION ${CMAKE_INSTALL_DATADIR}/postdeploy/schemas
  FILES_MATCHING PATTERN "*.avsc")
install(FILES include/postdeploy/plugin.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/postdeploy)
install(FILES scripts/postdeploy.bash-completion
  DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME postdeploy)
install(FILES examples/postdeploy.ini
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES examples/plugin/example_plugin.c
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/plugin)

set(PD_PC_INCLUDEDIR ${CMAKE_INSTALL_FULL_INCLUDEDIR})
configure_file(packaging/postdeploy-plugin.pc.in postdeploy-plugin.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/postdeploy-plugin.pc
  DESTINATION ${CMAKE_INSTALL_DATADIR}/pkgconfig)

# Man pages: two by hand, the config one from the key table.
set(PD_MAN_DIR ${CMAKE_CURRENT_BINARY_DIR}/man)
configure_file(packaging/man/postdeploy.1 ${PD_MAN_DIR}/postdeploy.1 @ONLY)
configure_file(packaging/man/postdeploy-reactor.8 ${PD_MAN_DIR}/postdeploy-reactor.8 @ONLY)
add_custom_command(OUTPUT ${PD_MAN_DIR}/postdeploy.ini.5
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scripts/gen-man-config.sh
    $<TARGET_FILE:postdeploy-reactor> ${PD_MAN_DIR}/postdeploy.ini.5 ${PROJECT_VERSION}
  DEPENDS postdeploy-reactor ${CMAKE_CURRENT_SOURCE_DIR}/scripts/gen-man-config.sh
  COMMENT "Generating postdeploy.ini(5) from the config key table")
add_custom_target(pd_man ALL DEPENDS ${PD_MAN_DIR}/postdeploy.ini.5)
install(FILES ${PD_MAN_DIR}/postdeploy.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PD_MAN_DIR}/postdeploy.ini.5 DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES ${PD_MAN_DIR}/postdeploy-reactor.8 DESTINATION ${CMAKE_INSTALL_MANDIR}/man8)

# systemd: the unit and its account. lib/systemd/system and lib/sysusers.d
# under the prefix: /usr/lib/... for a package, /usr/local/lib/... (which
# systemd also reads) for a plain install.
set(PD_REACTOR_PATH ${CMAKE_INSTALL_FULL_SBINDIR}/postdeploy-reactor)
configure_file(packaging/postdeploy-reactor.service.in postdeploy-reactor.service @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/postdeploy-reactor.service
  DESTINATION lib/systemd/system)
install(FILES packaging/postdeploy.sysusers
  DESTINATION lib/sysusers.d RENAME postdeploy.conf)

# The .deb: `cpack` in a build configured with -DCMAKE_INSTALL_PREFIX=/usr.
set(PD_SYSUSERS_FILE ${CMAKE_INSTALL_PREFIX}/lib/sysusers.d/postdeploy.conf)
configure_file(packaging/debian/postinst.in debian/postinst @ONLY
  FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME postdeploy)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "postdeploy maintainers <postdeploy@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "Runs a release's post-deploy actions through Kafka")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
# The runtime libraries of what pd_core links (checked with apt-cache
# policy on Debian 12).
set(CPACK_DEBIAN_PACKAGE_DEPENDS
  "librdkafka1, libavro23, libsqlite3-0, libjansson4, libssl3, libmicrohttpd12, libc6, passwd")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${CMAKE_CURRENT_BINARY_DIR}/debian/postinst
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/prerm
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
include(CPack)
